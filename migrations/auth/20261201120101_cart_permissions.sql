-- The cart's permission (issue 14): staff who create, change and retire discount codes.
-- Shoppers need nothing to use their own cart.
INSERT INTO auth.permissions (name, description) VALUES
    ('cart.discounts.manage', 'Create, change and delete discount codes')
ON CONFLICT (name) DO NOTHING;
