//! Who may see and change which order, shared by the resource files.

use uuid::Uuid;

use crate::platform::CurrentUser;
use crate::platform::error::ApiError;

/// Staff who see every order, mark manual payments, cancel at any stage and fulfil.
pub const MANAGE: &str = "orders.manage";
/// Staff who refund captured payments.
pub const REFUND: &str = "orders.refund";
/// Warehouse staff: see every order and move its fulfilment.
pub const FULFIL: &str = "orders.fulfil";

/// Whether the caller sees every buyer's orders.
pub fn staff(user: &CurrentUser) -> bool {
    user.can(MANAGE) || user.can(FULFIL)
}

/// The caller as a buyer: their account id (403 for tokens that are not a local account).
pub fn buyer(user: &CurrentUser) -> Result<Uuid, ApiError> {
    user.uuid()
}

/// 403 unless the caller may move fulfilment.
pub fn require_fulfil(user: &CurrentUser) -> Result<(), ApiError> {
    if staff(user) {
        Ok(())
    } else {
        user.require(FULFIL)
    }
}

/// Who is looking: their account id and whether they see every order. Staff whose token
/// is not for a local account still see every order.
pub fn viewer(user: &CurrentUser) -> Result<(Uuid, bool), ApiError> {
    if staff(user) {
        Ok((user.uuid().unwrap_or(Uuid::nil()), true))
    } else {
        Ok((user.uuid()?, false))
    }
}
