-- The catalog's stock permissions (issue 13): staff who count and correct stock, and
-- integrations that hold stock over HTTP (cart and orders call the catalog in-process).
INSERT INTO auth.permissions (name, description) VALUES
    ('catalog.stock.manage', 'See and adjust every variant''s stock'),
    ('catalog.stock.reserve', 'Reserve, commit and release stock')
ON CONFLICT (name) DO NOTHING;
