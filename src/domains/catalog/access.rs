//! Who may do what with products: the permissions the catalog checks, and the viewer every
//! read puts in its WHERE.

use crate::platform::CurrentUser;
use crate::platform::identity::MaybeUser;

use super::repo::{ProductRow, Viewer};

/// Sell: create products and manage one's own (the `vendor` role holds it).
pub const SELL: &str = "catalog.products.sell";
/// Staff: see, change and delete every product, feature products.
pub const MANAGE: &str = "catalog.products.manage";
/// Staff: approve and reject submitted products, see every product.
pub const MODERATE: &str = "catalog.products.moderate";

/// Staff: create, change, move and delete categories.
pub const CATEGORIES_MANAGE: &str = "catalog.categories.manage";

/// Staff: approve reviews held for moderation, see and delete every review.
pub const REVIEWS_MODERATE: &str = "catalog.reviews.moderate";

/// Staff: see and adjust every variant's stock.
pub const STOCK_MANAGE: &str = "catalog.stock.manage";
/// Integrations: reserve, commit and release stock over HTTP (cart and orders call `api`
/// in-process instead).
pub const STOCK_RESERVE: &str = "catalog.stock.reserve";

/// The viewer of a read: anonymous callers and tokens for accounts elsewhere see active
/// products only; sellers also their own; staff everything.
pub fn viewer(user: &MaybeUser) -> Viewer {
    Viewer {
        id: user.user().and_then(|u| u.uuid().ok()),
        staff: user.can(MANAGE) || user.can(MODERATE),
    }
}

/// The account acting, if it is a local one (a token for an account elsewhere owns nothing
/// here, but may still hold staff permissions).
pub fn actor_id(user: &CurrentUser) -> Option<uuid::Uuid> {
    user.uuid().ok()
}

/// Whether the viewer sees a product's inside (stock counts): its seller and staff.
pub fn insider(viewer: Viewer, product: &ProductRow) -> bool {
    viewer.staff || viewer.id == Some(product.seller_id)
}

/// Records a change staff made to someone else's product in the audit trail (a seller's
/// changes to their own products are theirs to make and are not staff actions).
pub async fn audit_staff(
    conn: &mut sqlx::PgConnection,
    user: &CurrentUser,
    before: &ProductRow,
    action: &str,
    after: Option<&ProductRow>,
) -> Result<(), sqlx::Error> {
    if actor_id(user) == Some(before.seller_id) {
        return Ok(());
    }
    let before_json = serde_json::to_value(super::model::snapshot(before)).ok();
    let after_json = after.and_then(|a| serde_json::to_value(super::model::snapshot(a)).ok());
    crate::platform::audit::record(
        conn,
        &crate::platform::audit::AuditEntry {
            actor: &user.actor(),
            action,
            object_type: "catalog.product",
            object_id: &before.id.to_string(),
            before: before_json.as_ref(),
            after: after_json.as_ref(),
        },
    )
    .await
}
