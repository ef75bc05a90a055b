-- The orders domain's permissions (issue 14), in the catalogue like every domain's. Staff
-- with `orders.manage` see every order, mark manual payments received, cancel at any stage
-- and move fulfilment; `orders.fulfil` is fulfilment alone (warehouse staff: processing,
-- shipped with tracking, delivered), without seeing payments or cancelling.
INSERT INTO auth.permissions (name, description) VALUES
    ('orders.manage', 'See every order, mark manual payments received, cancel and fulfil any order'),
    ('orders.fulfil', 'See every order and move its fulfilment (processing, shipped, delivered, completed)')
ON CONFLICT (name) DO NOTHING;
