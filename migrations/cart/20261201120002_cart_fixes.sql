-- Review fixes to the cart schema (the first migration is applied: never edited).

-- DELETE /cart of a user's cart that a guest cart was merged into failed on this foreign
-- key (it had no ON DELETE). The merged guest cart keeps its `merged` status; it only loses
-- the pointer to a cart that no longer exists.
ALTER TABLE cart.carts
    DROP CONSTRAINT carts_merged_into_fkey,
    ADD CONSTRAINT carts_merged_into_fkey
        FOREIGN KEY (merged_into) REFERENCES cart.carts (id) ON DELETE SET NULL;

-- Name the table CHECKs of `cart.discounts` so the code can map a violation by its name
-- (generated names depend on their order in the CREATE TABLE). Only the usage one can be
-- reached from outside: lowering `usage_limit` below `used_count` (the others are checked
-- by the request's validation first).
ALTER TABLE cart.discounts RENAME CONSTRAINT discounts_check TO discounts_kind_value_check;
ALTER TABLE cart.discounts RENAME CONSTRAINT discounts_check1 TO discounts_usage_within_limit;
ALTER TABLE cart.discounts RENAME CONSTRAINT discounts_check2 TO discounts_window_check;

-- When a cart left `active` for `merged` or `expired`: the purge job deletes such carts
-- (and their lines) a retention period later (`cart.purge_after_days`). `updated_at` cannot
-- serve: it is the shopper's last change, which expiry does not move.
ALTER TABLE cart.carts ADD COLUMN closed_at timestamptz;
UPDATE cart.carts SET closed_at = updated_at WHERE status IN ('merged', 'expired');
CREATE INDEX carts_closed ON cart.carts (closed_at) WHERE status IN ('merged', 'expired');
