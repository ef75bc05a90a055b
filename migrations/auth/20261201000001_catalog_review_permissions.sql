-- The catalog's review permission (issue 13): staff who approve reviews held for moderation
-- and remove any review. Writing, editing and deleting one's own review needs only a
-- signed-in account; answering a review belongs to the product's seller.
INSERT INTO auth.permissions (name, description) VALUES
    ('catalog.reviews.moderate', 'Approve, see and delete every product review')
ON CONFLICT (name) DO NOTHING;
