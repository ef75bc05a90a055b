//! `manual`: money that arrives outside Basalt (bank transfer, cash on delivery). Starting a
//! payment opens our own reference and tells the buyer how to pay; staff record the money's
//! arrival with `POST /orders/{id}/mark-paid`. A refund is recorded only (staff hand the
//! money back themselves) and succeeds at once. No webhooks, nothing to fetch.

use actix_web::http::header::HeaderMap;
use async_trait::async_trait;

use super::{
    PaymentProvider, ProviderError, ProviderEvent, RefundRequest, Refunded, RemotePayment,
    RemoteStatus, StartPayment, Started,
};

pub struct Manual;

pub const NAME: &str = "manual";

#[async_trait]
impl PaymentProvider for Manual {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn start(&self, request: &StartPayment<'_>) -> Result<Started, ProviderError> {
        // The idempotency key is unique per attempt and deterministic: a retried start is
        // the same reference, which `UNIQUE (provider, reference)` would refuse to repeat.
        Ok(Started {
            reference: format!("manual:{}", request.idempotency_key),
            status: RemoteStatus::RequiresPaymentMethod,
            client: serde_json::json!({
                "instructions": format!(
                    "Pay {} {} by bank transfer or cash on delivery, quoting {}; the order is confirmed once the money is received.",
                    request.amount, request.currency, request.order_number
                ),
            }),
        })
    }

    async fn fetch(&self, _reference: &str) -> Result<RemotePayment, ProviderError> {
        Err(ProviderError::Unsupported(
            "manual payments are confirmed by staff",
        ))
    }

    async fn refund(&self, request: &RefundRequest<'_>) -> Result<Refunded, ProviderError> {
        Ok(Refunded {
            reference: format!("manual:{}", request.idempotency_key),
            amount: request.amount,
            status: RemoteStatus::Succeeded,
        })
    }

    /// Nothing was asked of anyone outside Basalt: the reference simply closes.
    async fn cancel(&self, _reference: &str) -> Result<(), ProviderError> {
        Ok(())
    }

    fn webhook(
        &self,
        _headers: &HeaderMap,
        _body: &[u8],
        _now: i64,
    ) -> Result<ProviderEvent, ProviderError> {
        Err(ProviderError::Unsupported(
            "manual payments have no webhooks",
        ))
    }
}
