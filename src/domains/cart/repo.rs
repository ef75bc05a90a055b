//! All SQL of the cart domain (schema `cart`). Every statement runs on the caller's
//! connection; writes to a cart happen after `read(.., lock = true)` took its row lock in
//! the same transaction, so one cart's writes never interleave.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::model::{Address, DiscountResponse as Discount};

/// A stored line (the catalog's current data is looked up separately).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct LineRow {
    pub id: Uuid,
    pub variant_id: Uuid,
    pub quantity: i32,
    /// The snapshot: the unit price when the shopper last set the line.
    pub unit_price: i64,
}

/// A cart with its lines, its discount and the user's uses of that discount: what pricing
/// needs, in one row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CartRow {
    pub id: Uuid,
    pub user_id: Option<Uuid>,
    pub currency: Option<String>,
    pub email: Option<String>,
    pub shipping_address: Option<Json<Address>>,
    pub billing_address: Option<Json<Address>>,
    pub discount_id: Option<Uuid>,
    pub completed_order_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub lines: Json<Vec<LineRow>>,
    pub discount: Option<Json<Discount>>,
    pub customer_uses: Option<i32>,
    /// The guest lines a merge in this request left out (not stored: reported once).
    #[sqlx(skip)]
    pub not_merged: Vec<super::api::LineChange>,
    /// The stored runtime settings of the `cart` namespace (key → value): read for
    /// checkout only, so it prices with the values committed at that moment.
    pub stored_rules: Option<Json<std::collections::BTreeMap<String, serde_json::Value>>>,
}

/// Which cart a read names.
#[derive(Debug, Clone, Copy)]
pub enum CartKey<'a> {
    /// The user's active cart.
    User(Uuid),
    /// The active guest cart with this token hash.
    Token(&'a [u8]),
    /// A cart by id, if it is this user's and active or completed (checkout).
    Checkout { cart: Uuid, user: Uuid },
}

/// Reads a cart with its lines (oldest first) and discount in one statement; `lock` takes
/// the cart's row lock for the caller's transaction first, in a statement of its own.
///
/// Why two statements when locking: a `SELECT ... FOR UPDATE` that waits for another
/// transaction's lock re-checks the locked row as committed, but its subqueries (the lines,
/// the discount) still see the snapshot taken before the wait, so a write queued behind a
/// concurrent add would lose that add. The read after the lock takes a new snapshot (READ
/// COMMITTED) that includes everything committed before the lock was granted.
pub async fn read(
    conn: &mut PgConnection,
    key: CartKey<'_>,
    lock: bool,
) -> Result<Option<CartRow>, sqlx::Error> {
    let filter = match key {
        CartKey::User(_) => "c.user_id = $1 AND c.status = 'active'",
        CartKey::Token(_) => "c.token_hash = $1 AND c.user_id IS NULL AND c.status = 'active'",
        CartKey::Checkout { .. } => {
            "c.id = $1 AND c.user_id = $2 AND c.status IN ('active', 'completed')"
        }
    };
    // The platform's runtime settings table is the kernel's, not another domain's: checkout
    // reads the cart's own settings from it in this statement (no extra round trip).
    let rules = match key {
        CartKey::Checkout { .. } => {
            "(SELECT jsonb_object_agg(s.key, s.value) FROM platform.runtime_settings s
               WHERE s.namespace = 'cart')"
        }
        _ => "NULL::jsonb",
    };
    let sql = format!(
        "SELECT c.id, c.user_id, c.currency, c.email, c.shipping_address,
                c.billing_address, c.discount_id, c.completed_order_id, c.created_at, c.updated_at,
                coalesce((SELECT json_agg(json_build_object(
                              'id', l.id, 'variant_id', l.variant_id, 'quantity', l.quantity,
                              'unit_price', l.unit_price)
                            ORDER BY l.created_at, l.id)
                            FROM cart.lines l WHERE l.cart_id = c.id), '[]') AS lines,
                (SELECT to_jsonb(d) FROM cart.discounts d WHERE d.id = c.discount_id) AS discount,
                (SELECT r.uses FROM cart.discount_redemptions r
                  WHERE r.discount_id = c.discount_id AND r.user_id = c.user_id) AS customer_uses,
                {rules} AS stored_rules
           FROM cart.carts c
          WHERE {filter}"
    );
    if lock {
        let locking = format!("SELECT 1 FROM cart.carts c WHERE {filter} FOR UPDATE");
        let query = sqlx::query(&locking);
        let query = match key {
            CartKey::User(user) => query.bind(user),
            CartKey::Token(hash) => query.bind(hash),
            CartKey::Checkout { cart, user } => query.bind(cart).bind(user),
        };
        if query.fetch_optional(&mut *conn).await?.is_none() {
            return Ok(None);
        }
    }
    let query = sqlx::query_as(&sql);
    let query = match key {
        CartKey::User(user) => query.bind(user),
        CartKey::Token(hash) => query.bind(hash),
        CartKey::Checkout { cart, user } => query.bind(cart).bind(user),
    };
    query.fetch_optional(conn).await
}

/// Starts an active cart for a user (`None` when a concurrent request started one first:
/// read it instead) or for a guest token.
pub async fn create(
    conn: &mut PgConnection,
    user: Option<Uuid>,
    token_hash: Option<&[u8]>,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO cart.carts (id, user_id, token_hash) VALUES ($1, $2, $3)
         ON CONFLICT (user_id) WHERE status = 'active' AND user_id IS NOT NULL DO NOTHING
         RETURNING id",
    )
    .bind(Uuid::now_v7())
    .bind(user)
    .bind(token_hash)
    .fetch_optional(conn)
    .await
}

/// Sets a line to `quantity` at the snapshot `unit_price` (adding it when the cart has no
/// line of this variant), and the cart's currency and activity, in one statement.
pub async fn set_line(
    conn: &mut PgConnection,
    cart: Uuid,
    variant: Uuid,
    quantity: i32,
    unit_price: i64,
    currency: &str,
) -> Result<LineRow, sqlx::Error> {
    let json: Json<LineRow> = sqlx::query_scalar(
        "WITH c AS (
             UPDATE cart.carts SET currency = $5, updated_at = now(), abandoned_at = NULL
              WHERE id = $1
         )
         INSERT INTO cart.lines AS l (id, cart_id, variant_id, quantity, unit_price)
         VALUES ($6, $1, $2, $3, $4)
         ON CONFLICT (cart_id, variant_id)
         DO UPDATE SET quantity = EXCLUDED.quantity, unit_price = EXCLUDED.unit_price, updated_at = now()
         RETURNING json_build_object('id', l.id, 'variant_id', l.variant_id, 'quantity', l.quantity,
                                     'unit_price', l.unit_price)",
    )
    .bind(cart)
    .bind(variant)
    .bind(quantity)
    .bind(unit_price)
    .bind(currency)
    .bind(Uuid::now_v7())
    .fetch_one(conn)
    .await?;
    Ok(json.0)
}

/// Removes a line; the cart's currency is released when it was the last one. `false` when
/// the cart has no such line.
pub async fn delete_line(
    conn: &mut PgConnection,
    cart: Uuid,
    line: Uuid,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "WITH l AS (
             DELETE FROM cart.lines WHERE id = $2 AND cart_id = $1 RETURNING id
         ), c AS (
             UPDATE cart.carts c
                SET updated_at = now(), abandoned_at = NULL,
                    currency = CASE WHEN EXISTS (SELECT 1 FROM cart.lines o
                                                  WHERE o.cart_id = c.id AND o.id <> $2)
                                    THEN c.currency END
              WHERE c.id = $1 AND EXISTS (SELECT 1 FROM l)
         )
         SELECT EXISTS (SELECT 1 FROM l)",
    )
    .bind(cart)
    .bind(line)
    .fetch_one(conn)
    .await
}

/// Deletes a cart and its lines.
pub async fn delete_cart(conn: &mut PgConnection, cart: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM cart.carts WHERE id = $1")
        .bind(cart)
        .execute(conn)
        .await?;
    Ok(())
}

/// Applies (or, with `None`, removes) a discount.
pub async fn set_discount(
    conn: &mut PgConnection,
    cart: Uuid,
    discount: Option<Uuid>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE cart.carts SET discount_id = $2, updated_at = now(), abandoned_at = NULL WHERE id = $1",
    )
    .bind(cart)
    .bind(discount)
    .execute(conn)
    .await?;
    Ok(())
}

/// Sets the contact email and the addresses.
pub async fn set_addresses(
    conn: &mut PgConnection,
    cart: Uuid,
    email: Option<&str>,
    shipping: Option<&Address>,
    billing: Option<&Address>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE cart.carts
            SET email = $2, shipping_address = $3, billing_address = $4,
                updated_at = now(), abandoned_at = NULL
          WHERE id = $1",
    )
    .bind(cart)
    .bind(email)
    .bind(shipping.map(Json))
    .bind(billing.map(Json))
    .execute(conn)
    .await?;
    Ok(())
}

/// A live discount by its (upper-case) code, with `user`'s uses of it.
#[derive(Debug, sqlx::FromRow)]
pub struct DiscountUse {
    #[sqlx(flatten)]
    pub discount: Discount,
    pub customer_uses: Option<i32>,
}

pub async fn discount_by_code(
    conn: &mut PgConnection,
    code: &str,
    user: Option<Uuid>,
) -> Result<Option<DiscountUse>, sqlx::Error> {
    sqlx::query_as(
        "SELECT d.*, (SELECT r.uses FROM cart.discount_redemptions r
                       WHERE r.discount_id = d.id AND r.user_id = $2) AS customer_uses
           FROM cart.discounts d WHERE d.code = $1 AND d.deleted_at IS NULL",
    )
    .bind(code)
    .bind(user)
    .fetch_optional(conn)
    .await
}

/// How a consume went.
#[derive(Debug, PartialEq, Eq)]
pub enum Consumed {
    Yes,
    /// Refused: inactive, outside its window, used up, or the user's uses are spent.
    No,
}

/// Takes one use of a discount for `user` in one statement: the conditional UPDATE of the
/// discount's counter (active, in its window, under its total limit) and the conditional
/// upsert of the user's counter (under the per-customer limit) that only runs when the
/// first took a use.
///
/// Why it cannot over-use: the UPDATE takes the discount's row lock, so concurrent uses of a
/// code queue on it, and PostgreSQL re-checks `used_count < usage_limit` on the row as the
/// previous holder committed it. The per-customer upsert's `WHERE uses < limit` likewise
/// sees the latest committed counter (ON CONFLICT DO UPDATE always does). The UPDATE's own
/// look at the user's counter is only a pre-check, from the statement's snapshot: when a
/// concurrent use by the same user spent the last one since, the upsert refuses while the
/// UPDATE took a use, and `cart.refuse()` fails the whole statement, so nothing is kept
/// (the caller's transaction is then aborted; checkout rolls back on any error anyway).
pub async fn consume_discount(
    conn: &mut PgConnection,
    discount: Uuid,
    user: Uuid,
) -> Result<Consumed, sqlx::Error> {
    let taken: bool = sqlx::query_scalar(
        "WITH d AS (
             UPDATE cart.discounts d SET used_count = d.used_count + 1, updated_at = now()
              WHERE d.id = $1 AND d.active AND d.deleted_at IS NULL
                AND (d.starts_at IS NULL OR d.starts_at <= now())
                AND (d.ends_at IS NULL OR d.ends_at > now())
                AND (d.usage_limit IS NULL OR d.used_count < d.usage_limit)
                AND (d.per_customer_limit IS NULL OR coalesce(
                        (SELECT r.uses FROM cart.discount_redemptions r
                          WHERE r.discount_id = d.id AND r.user_id = $2), 0) < d.per_customer_limit)
             RETURNING d.id, d.per_customer_limit
         ), r AS (
             INSERT INTO cart.discount_redemptions AS r (discount_id, user_id, uses)
             SELECT d.id, $2, 1 FROM d
             ON CONFLICT (discount_id, user_id) DO UPDATE
                SET uses = r.uses + 1, last_used_at = now()
              WHERE r.uses < coalesce((SELECT d.per_customer_limit FROM d), 2147483647)
             RETURNING 1
         )
         SELECT CASE WHEN EXISTS (SELECT 1 FROM d) AND NOT EXISTS (SELECT 1 FROM r)
                     THEN cart.refuse('discount_customer_limit')
                     ELSE EXISTS (SELECT 1 FROM r) END",
    )
    .bind(discount)
    .bind(user)
    .fetch_one(conn)
    .await?;
    Ok(if taken { Consumed::Yes } else { Consumed::No })
}

/// Gives one use back (an order cancelled before it was paid): both counters go down by
/// one, never below zero. `false` when the user had no use of it.
pub async fn release_discount(
    conn: &mut PgConnection,
    discount: Uuid,
    user: Uuid,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "WITH r AS (
             UPDATE cart.discount_redemptions SET uses = uses - 1
              WHERE discount_id = $1 AND user_id = $2 AND uses > 0
             RETURNING discount_id
         ), d AS (
             UPDATE cart.discounts SET used_count = used_count - 1, updated_at = now()
              WHERE id IN (SELECT discount_id FROM r) AND used_count > 0
         )
         SELECT EXISTS (SELECT 1 FROM r)",
    )
    .bind(discount)
    .bind(user)
    .fetch_one(conn)
    .await
}

/// Marks an active cart completed by `order`; `false` when it is not active.
pub async fn complete(
    conn: &mut PgConnection,
    cart: Uuid,
    order: Uuid,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE cart.carts SET status = 'completed', completed_order_id = $2, updated_at = now()
          WHERE id = $1 AND status = 'active'",
    )
    .bind(cart)
    .bind(order)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Whether a cart of any state exists.
pub async fn exists(conn: &mut PgConnection, cart: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM cart.carts WHERE id = $1)")
        .bind(cart)
        .fetch_one(conn)
        .await
}

/// Writes the merged lines into the user's cart (absolute quantities, computed by the
/// caller under both carts' locks) and marks the guest cart merged, in one statement. The
/// user's cart takes the guest's email, addresses (both, when it has neither) and discount
/// code where it has none: what the guest entered before signing in is not lost.
pub async fn merge(
    conn: &mut PgConnection,
    guest: Uuid,
    target: Uuid,
    currency: Option<&str>,
    lines: &[(Uuid, i32, i64)],
) -> Result<(), sqlx::Error> {
    let variants: Vec<Uuid> = lines.iter().map(|l| l.0).collect();
    let quantities: Vec<i32> = lines.iter().map(|l| l.1).collect();
    let prices: Vec<i64> = lines.iter().map(|l| l.2).collect();
    let ids: Vec<Uuid> = lines.iter().map(|_| Uuid::now_v7()).collect();
    sqlx::query(
        "WITH g AS (
             UPDATE cart.carts SET status = 'merged', merged_into = $2, updated_at = now(), closed_at = now()
              WHERE id = $1
         ), t AS (
             UPDATE cart.carts t
                SET currency = coalesce(t.currency, $3), updated_at = now(), abandoned_at = NULL,
                    email = coalesce(t.email, g.email),
                    discount_id = coalesce(t.discount_id, g.discount_id),
                    shipping_address = CASE WHEN t.shipping_address IS NULL AND t.billing_address IS NULL
                                            THEN g.shipping_address ELSE t.shipping_address END,
                    billing_address = CASE WHEN t.shipping_address IS NULL AND t.billing_address IS NULL
                                           THEN g.billing_address ELSE t.billing_address END
               FROM cart.carts g
              WHERE t.id = $2 AND g.id = $1
         )
         INSERT INTO cart.lines AS l (id, cart_id, variant_id, quantity, unit_price)
         SELECT i, $2, v, q, p FROM unnest($4::uuid[], $5::uuid[], $6::int[], $7::bigint[]) AS x(i, v, q, p)
         ON CONFLICT (cart_id, variant_id)
         DO UPDATE SET quantity = EXCLUDED.quantity, unit_price = EXCLUDED.unit_price, updated_at = now()",
    )
    .bind(guest)
    .bind(target)
    .bind(currency)
    .bind(&ids)
    .bind(&variants)
    .bind(&quantities)
    .bind(&prices)
    .execute(conn)
    .await?;
    Ok(())
}

// ---- discount codes (staff) ----

/// A discount's fields as they will be stored.
#[derive(Debug, Clone)]
pub struct DiscountFields {
    pub code: String,
    pub kind: String,
    pub value: i64,
    pub currency: Option<String>,
    pub min_subtotal: i64,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub usage_limit: Option<i32>,
    pub per_customer_limit: Option<i32>,
    pub product_ids: Vec<Uuid>,
    pub category_ids: Vec<Uuid>,
    pub active: bool,
}

/// The discount's id and its fields as `$1` to `$13`, in the order both the INSERT and the
/// UPDATE name their columns.
fn bind_discount<'q>(
    query: sqlx::query::QueryAs<'q, sqlx::Postgres, Discount, sqlx::postgres::PgArguments>,
    id: Uuid,
    f: &'q DiscountFields,
) -> sqlx::query::QueryAs<'q, sqlx::Postgres, Discount, sqlx::postgres::PgArguments> {
    query
        .bind(id)
        .bind(&f.code)
        .bind(&f.kind)
        .bind(f.value)
        .bind(&f.currency)
        .bind(f.min_subtotal)
        .bind(f.starts_at)
        .bind(f.ends_at)
        .bind(f.usage_limit)
        .bind(f.per_customer_limit)
        .bind(&f.product_ids)
        .bind(&f.category_ids)
        .bind(f.active)
}

pub async fn insert_discount(
    conn: &mut PgConnection,
    f: &DiscountFields,
) -> Result<Discount, sqlx::Error> {
    let query = sqlx::query_as(
        "INSERT INTO cart.discounts (id, code, kind, value, currency, min_subtotal, starts_at,
                 ends_at, usage_limit, per_customer_limit, product_ids, category_ids, active)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         RETURNING *",
    );
    bind_discount(query, Uuid::now_v7(), f)
        .fetch_one(conn)
        .await
}

/// Replaces a live discount's fields (its uses stay). `None`: no such live discount.
pub async fn update_discount(
    conn: &mut PgConnection,
    id: Uuid,
    f: &DiscountFields,
) -> Result<Option<Discount>, sqlx::Error> {
    let query = sqlx::query_as(
        "UPDATE cart.discounts
            SET code = $2, kind = $3, value = $4, currency = $5, min_subtotal = $6,
                starts_at = $7, ends_at = $8, usage_limit = $9, per_customer_limit = $10,
                product_ids = $11, category_ids = $12, active = $13, updated_at = now()
          WHERE id = $1 AND deleted_at IS NULL
         RETURNING *",
    );
    bind_discount(query, id, f).fetch_optional(conn).await
}

pub async fn discount(pool: &PgPool, id: Uuid) -> Result<Option<Discount>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM cart.discounts WHERE id = $1 AND deleted_at IS NULL")
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// Live discounts, newest first, after the keyset `before` (created_at, id).
pub async fn discounts(
    pool: &PgPool,
    before: Option<(DateTime<Utc>, Uuid)>,
    fetch: i64,
) -> Result<Vec<Discount>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM cart.discounts
          WHERE deleted_at IS NULL
            AND ($1::timestamptz IS NULL OR (created_at, id) < ($1, $2))
          ORDER BY created_at DESC, id DESC LIMIT $3",
    )
    .bind(before.map(|b| b.0))
    .bind(before.map(|b| b.1))
    .bind(fetch)
    .fetch_all(pool)
    .await
}

/// Retires a discount: carts holding it stop getting it (reported on their next read).
pub async fn delete_discount(conn: &mut PgConnection, id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE cart.discounts SET deleted_at = now(), active = false, updated_at = now()
          WHERE id = $1 AND deleted_at IS NULL",
    )
    .bind(id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

// ---- jobs ----

/// Marks up to 1000 active carts expired whose last change is older than their lifetime
/// (guests' and users' apart); returns how many.
pub async fn sweep_expired(
    pool: &PgPool,
    guest_days: i64,
    user_days: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE cart.carts SET status = 'expired', closed_at = now()
          WHERE id IN (SELECT id FROM cart.carts
                        WHERE status = 'active'
                          AND updated_at < now() - make_interval(days => CASE WHEN user_id IS NULL
                                                                          THEN $1 ELSE $2 END)
                        LIMIT 1000 FOR UPDATE SKIP LOCKED)",
    )
    .bind(guest_days as i32)
    .bind(user_days as i32)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Deletes up to 1000 merged or expired carts (their lines cascade) closed more than
/// `days` ago; returns how many. Completed carts stay: orders name them.
pub async fn purge_closed(pool: &PgPool, days: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM cart.carts
          WHERE id IN (SELECT id FROM cart.carts
                        WHERE status IN ('merged', 'expired')
                          AND closed_at < now() - make_interval(days => $1)
                        LIMIT 1000 FOR UPDATE SKIP LOCKED)",
    )
    .bind(days as i32)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// A signed-in cart with items that went idle, marked abandoned by this statement.
#[derive(Debug, sqlx::FromRow)]
pub struct AbandonedRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub email: Option<String>,
    pub currency: Option<String>,
    pub updated_at: DateTime<Utc>,
    pub items: i64,
}

/// Marks up to 500 signed-in carts with items, idle for `idle_minutes` and not yet reported,
/// abandoned (once per period of inactivity: the next change resets it).
pub async fn mark_abandoned(
    conn: &mut PgConnection,
    idle_minutes: i64,
) -> Result<Vec<AbandonedRow>, sqlx::Error> {
    sqlx::query_as(
        "WITH c AS (
             UPDATE cart.carts SET abandoned_at = now()
              WHERE id IN (SELECT c.id FROM cart.carts c
                            WHERE c.status = 'active' AND c.user_id IS NOT NULL
                              AND c.abandoned_at IS NULL
                              AND c.updated_at < now() - make_interval(mins => $1)
                              AND EXISTS (SELECT 1 FROM cart.lines l WHERE l.cart_id = c.id)
                            LIMIT 500 FOR UPDATE SKIP LOCKED)
             RETURNING id, user_id, email, currency, updated_at
         )
         SELECT c.id, c.user_id, c.email, c.currency, c.updated_at,
                (SELECT coalesce(sum(l.quantity), 0) FROM cart.lines l WHERE l.cart_id = c.id)::bigint AS items
           FROM c",
    )
    .bind(idle_minutes as i32)
    .fetch_all(conn)
    .await
}
