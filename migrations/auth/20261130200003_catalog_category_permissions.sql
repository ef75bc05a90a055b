-- The catalog's category permission (issue 13): staff who shape the category tree. Reading
-- categories needs nothing.
INSERT INTO auth.permissions (name, description) VALUES
    ('catalog.categories.manage', 'Create, change, move and delete categories')
ON CONFLICT (name) DO NOTHING;
