-- Refunds (issue 15): staff with `orders.refund` refund all or part of an order's captured
-- payments, through the provider (or recorded, for `manual`). Apart from `orders.manage` on
-- purpose: money leaving is a narrower grant than handling orders.
INSERT INTO auth.permissions (name, description) VALUES
    ('orders.refund', 'Refund all or part of an order''s captured payments')
ON CONFLICT (name) DO NOTHING;
