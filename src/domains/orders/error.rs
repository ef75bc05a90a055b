//! `OrdersError`: every problem the orders domain answers with, its status and stable `code`
//! in one place (listed in OpenAPI as `OrdersErrorCode`). The cart's and the catalog's errors
//! pass through as their own problems (`Platform`), except the stock ones checkout names.

use uuid::Uuid;

use super::providers::ProviderError;
use crate::domains::cart::CartError;
use crate::domains::catalog::CatalogError;
use crate::platform::error::{ApiError, FieldError};

/// One order per cart: the backstop behind the cart's `completed_order_id`.
pub const ONE_ORDER_PER_CART: &str = "orders_cart_id_key";

crate::domain_errors! {
    /// Errors of the orders domain.
    pub enum OrdersError {
        #[problem(NOT_FOUND, "not_found")]
        #[error("No such order, or not yours.")]
        OrderNotFound,
        #[problem(NOT_FOUND, "not_found")]
        #[error("No such part of this order.")]
        SubOrderNotFound,
        #[problem(NOT_FOUND, "not_found")]
        #[error("No such cart, or not yours.")]
        CartNotFound,
        #[problem(CONFLICT, "invalid_transition")]
        #[error("The order is {from}; it cannot be {action}.")]
        InvalidTransition { from: &'static str, action: &'static str },
        /// A part (one seller's sub-order) stands where the order does not, and it is the
        /// part that refuses: say so rather than naming a status the order is not in.
        #[problem(CONFLICT, "invalid_transition")]
        #[error("A part of the order is {from}; the order cannot be {action}.")]
        PartInvalidTransition { from: &'static str, action: &'static str },
        #[problem(UNPROCESSABLE_ENTITY, "cart_empty")]
        #[error("The cart is empty: add items before checking out.")]
        CartEmpty,
        #[problem(CONFLICT, "cart_changed")]
        #[error("Prices or availability changed since the cart was last read; review the changes (listed in `errors`) and check out again.")]
        CartChanged,
        #[problem(CONFLICT, "insufficient_stock")]
        #[error("Not enough stock of variant {variant_id}: {available} available.")]
        InsufficientStock { variant_id: Uuid, available: i32 },
        #[problem(CONFLICT, "variant_unavailable")]
        #[error("Variant {0} is no longer on sale.")]
        VariantUnavailable(Uuid),
        #[problem(UNPROCESSABLE_ENTITY, "payment_provider_unavailable")]
        #[error("The payment provider {0} is not available here; use one of: {1}.")]
        PaymentProviderUnavailable(String, String),
        /// A provider's route (its webhook, a payment through it) where it is not configured.
        #[problem(NOT_FOUND, "provider_not_configured")]
        #[error("The payment provider {0} is not configured here.")]
        ProviderNotConfigured(String),
        /// Another provider's payment of this order is still open: finishing or abandoning
        /// it is the buyer's (or the provider's) move, not a second intent.
        #[problem(CONFLICT, "payment_in_progress")]
        #[error("A {0} payment of this order is in progress; finish it with that provider.")]
        PaymentInProgress(String),
        #[problem(NOT_FOUND, "not_found")]
        #[error("No such payment of this order.")]
        PaymentNotFound,
        /// What the provider cannot take (a three-decimal amount Razorpay cannot express).
        #[problem(UNPROCESSABLE_ENTITY, "provider_unsupported")]
        #[error("The payment provider cannot do this: {0}.")]
        ProviderUnsupported(&'static str),
        /// Money captured after the order was cancelled: its stock was given back and its
        /// parts cancelled, so there is nothing to fulfil; staff refund it.
        #[problem(CONFLICT, "paid_after_cancel")]
        #[error("The order was cancelled before its payment arrived: refund it rather than fulfil it.")]
        PaidAfterCancel,
        #[problem(CONFLICT, "nothing_outstanding")]
        #[error("The order's payments already cover its total.")]
        NothingOutstanding,
        #[problem(CONFLICT, "refund_exceeds_captured")]
        #[error("At most {available} can be refunded (captured and not yet refunded).")]
        RefundExceedsCaptured { available: i64 },
        #[problem(BAD_REQUEST, "invalid_signature")]
        #[error("The webhook's signature is invalid: {0}.")]
        InvalidSignature(&'static str),
        #[problem(BAD_REQUEST, "invalid_payload")]
        #[error("The webhook's body is not what the provider sends: {0}.")]
        InvalidPayload(String),
        #[problem(BAD_GATEWAY, "provider_refused")]
        #[error("The payment provider refused: {0}")]
        ProviderRefused(String),
        #[problem(SERVICE_UNAVAILABLE, "provider_unavailable")]
        #[error("The payment provider cannot be reached; try again shortly.")]
        ProviderUnavailable(String),
    }
}

impl OrdersError {
    /// A 409 `cart_changed` listing each change as `{field: "lines[<line id>]", code:
    /// "price_changed" | "unavailable" | ..., message}`, so the client can show them and ask
    /// the buyer to confirm.
    pub fn cart_changed(changes: Vec<FieldError>) -> Self {
        Self::Platform(Self::CartChanged.to_api().with_errors(changes))
    }

    /// A reservation the checkout could not take, named by its variant.
    pub fn reserve_failed(e: CatalogError, variant_id: Uuid) -> Self {
        match e {
            CatalogError::InsufficientStock(available) => Self::InsufficientStock {
                variant_id,
                available,
            },
            CatalogError::VariantNotOnSale => Self::VariantUnavailable(variant_id),
            other => other.into(),
        }
    }
}

impl From<ProviderError> for OrdersError {
    fn from(e: ProviderError) -> Self {
        match e {
            ProviderError::Signature(why) => Self::InvalidSignature(why),
            ProviderError::Payload(why) => Self::InvalidPayload(why),
            ProviderError::Refused(why) => Self::ProviderRefused(why),
            ProviderError::Unavailable(why) => {
                // The answer says only "try again"; what failed is for the logs.
                tracing::warn!(error = %why, "a payment provider is unavailable");
                Self::ProviderUnavailable(why)
            }
            ProviderError::Unsupported(what) => Self::ProviderUnsupported(what),
        }
    }
}

impl From<CatalogError> for OrdersError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::Database(e) => Self::Database(e),
            CatalogError::Internal(e) => Self::Internal(e),
            other => Self::Platform(ApiError::from(other)),
        }
    }
}

impl From<CartError> for OrdersError {
    fn from(e: CartError) -> Self {
        match e {
            CartError::Database(e) => Self::Database(e),
            CartError::Internal(e) => Self::Internal(e),
            other => Self::Platform(ApiError::from(other)),
        }
    }
}
