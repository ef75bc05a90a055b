-- Permissions other domains check on API keys (a key's scopes can never exceed its owner's
-- permissions, so every account must hold them for its keys to carry them).
INSERT INTO auth.permissions (name, description) VALUES
    ('databases.read', 'Read databases, collections and documents'),
    ('databases.write', 'Create and change databases, collections and documents'),
    ('storage.read', 'Read buckets and files'),
    ('storage.write', 'Create and change buckets and files')
ON CONFLICT (name) DO NOTHING;

INSERT INTO auth.role_permissions (role, permission) VALUES
    ('user', 'databases.read'),
    ('user', 'databases.write'),
    ('user', 'storage.read'),
    ('user', 'storage.write')
ON CONFLICT DO NOTHING;
