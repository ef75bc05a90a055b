-- The catalog's permissions (issue 13), in the catalogue like every domain's, so roles can
-- be given them and API keys scoped to them. Sellers (the `vendor` role) create products and
-- manage their own; staff roles are made by administrators with the other two (the `admin`
-- role holds every permission anyway).
INSERT INTO auth.permissions (name, description) VALUES
    ('catalog.products.sell', 'Create products and manage one''s own'),
    ('catalog.products.manage', 'See, change, feature and delete every product'),
    ('catalog.products.moderate', 'Approve and reject submitted products')
ON CONFLICT (name) DO NOTHING;

INSERT INTO auth.role_permissions (role, permission) VALUES
    ('vendor', 'catalog.products.sell')
ON CONFLICT DO NOTHING;
