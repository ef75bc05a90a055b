-- The kernel's own permission (issue 11): listing and replaying dead-lettered events. In the
-- catalogue so that a staff role other than `admin` can be given it and keys scoped to it.
INSERT INTO auth.permissions (name, description) VALUES
    ('platform.events.manage', 'List and replay events the subscribers gave up on')
ON CONFLICT (name) DO NOTHING;
