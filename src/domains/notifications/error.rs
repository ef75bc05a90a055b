//! The notifications domain's one error enum: every problem its handlers answer with, and
//! its stable code.

crate::domain_errors! {
    /// Errors of the notifications domain.
    pub enum NotifyError {
        #[problem(NOT_FOUND, "not_found")]
        #[error("No such notification.")]
        NotificationNotFound,
        #[problem(NOT_FOUND, "not_found")]
        #[error("No category {0}; known: {1}.")]
        UnknownCategory(String, String),
        #[problem(FORBIDDEN, "forbidden")]
        #[error("This unsubscribe link is not valid.")]
        BadUnsubscribeLink,
        #[problem(NOT_FOUND, "not_found")]
        #[error("No such message.")]
        MessageNotFound,
        #[problem(CONFLICT, "not_failed")]
        #[error("The message is {0}; only failed messages are retried.")]
        NotFailed(String),
        #[problem(NOT_FOUND, "not_found")]
        #[error("No such webhook endpoint.")]
        EndpointNotFound,
        #[problem(NOT_FOUND, "not_found")]
        #[error("No such delivery.")]
        DeliveryNotFound,
    }
}
