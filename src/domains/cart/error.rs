//! `CartError`: every problem the cart domain answers with, its status and stable `code` in
//! one place (listed in OpenAPI as `CartErrorCode`). The orders domain wraps it for
//! checkout, so it is public.

/// One live discount per code.
pub const CODE_TAKEN: &str = "discounts_code_key";
/// `used_count <= usage_limit`: a new limit below the uses so far.
pub const USAGE_WITHIN_LIMIT: &str = "discounts_usage_within_limit";
/// The SQLSTATE `cart.refuse()` raises (the per-customer race of `consume_discount`).
pub const REFUSED: &str = "BC001";

crate::domain_errors! {
    /// Errors of the cart domain.
    pub enum CartError {
        #[problem(NOT_FOUND, "not_found")]
        #[error("No cart: adding an item (POST /cart/items) starts one. A guest cart is named by its X-Cart-Token.")]
        CartNotFound,
        #[problem(NOT_FOUND, "not_found")]
        #[error("No such line in this cart.")]
        LineNotFound,
        #[problem(NOT_FOUND, "not_found")]
        #[error("No such discount.")]
        DiscountNotFound,
        #[problem(UNPROCESSABLE_ENTITY, "variant_not_on_sale")]
        #[error("The variant {0} is not on sale (unknown, draft, archived or deleted).")]
        VariantNotOnSale(uuid::Uuid),
        #[problem(UNPROCESSABLE_ENTITY, "currency_mismatch")]
        #[error("The cart is in {cart}; this variant is priced in {variant}. One currency per cart.")]
        CurrencyMismatch { cart: String, variant: String },
        #[problem(CONFLICT, "insufficient_stock")]
        #[error("Not enough stock: {0} available.")]
        InsufficientStock(i32),
        #[problem(UNPROCESSABLE_ENTITY, "too_many_lines")]
        #[error("A cart holds at most {0} lines.")]
        TooManyLines(usize),
        #[problem(CONFLICT, "cart_completed")]
        #[error("The cart is completed (checked out): it no longer changes.")]
        CartCompleted,
        #[problem(UNPROCESSABLE_ENTITY, "discount_unknown")]
        #[error("No discount code {0}.")]
        DiscountUnknown(String),
        #[problem(UNPROCESSABLE_ENTITY, "discount_not_started")]
        #[error("The discount code {0} is not valid yet.")]
        DiscountNotStarted(String),
        #[problem(UNPROCESSABLE_ENTITY, "discount_expired")]
        #[error("The discount code {0} has expired.")]
        DiscountExpired(String),
        #[problem(CONFLICT, "discount_used_up")]
        #[error("The discount code {0} has been used as often as it may be.")]
        DiscountUsedUp(String),
        #[problem(CONFLICT, "discount_customer_limit")]
        #[error("You have used the discount code {0} as often as you may.")]
        DiscountCustomerLimit(String),
        #[problem(UNPROCESSABLE_ENTITY, "discount_minimum_not_met")]
        #[error("The discount code {code} needs a subtotal of at least {minimum} (minor units).")]
        DiscountMinimumNotMet { code: String, minimum: i64 },
        #[problem(UNPROCESSABLE_ENTITY, "discount_not_applicable")]
        #[error("The discount code {0} applies to nothing in this cart (other products, categories or currency).")]
        DiscountNotApplicable(String),
        #[problem(UNPROCESSABLE_ENTITY, "discount_needs_account")]
        #[error("The discount code {0} is limited per customer: sign in to use it.")]
        DiscountNeedsAccount(String),
        #[problem(CONFLICT, "discount_unavailable")]
        #[error("The discount can no longer be used (expired, used up, or your uses are spent).")]
        DiscountUnavailable,
        #[problem(UNPROCESSABLE_ENTITY, "total_too_large")]
        #[error("The cart's total does not fit the money range: remove something.")]
        TotalTooLarge,
        #[problem(CONFLICT, "code_taken")]
        #[error("A live discount has the code {0} already.")]
        CodeTaken(String),
    }
}

impl CartError {
    /// A failed discount write: a taken code or a usage limit below the uses so far by
    /// their constraint's name, anything else as is. (The other CHECKs of the cart tables
    /// are all enforced by request validation first, so they cannot be reached.)
    pub fn discount_write(e: sqlx::Error, code: &str) -> Self {
        match crate::platform::error::violated_constraint(&e) {
            Some(CODE_TAKEN) => Self::CodeTaken(code.to_owned()),
            Some(USAGE_WITHIN_LIMIT) => Self::invalid_field(
                "usage_limit",
                "range",
                "is below the uses so far (used_count): raise it, or leave it out for unlimited",
            ),
            _ => e.into(),
        }
    }
}
