//! The auth domain's one error enum: every problem its handlers answer with, its status and
//! its stable `code` (clients switch on the codes; tests assert them), and the names of the
//! constraints whose violations become those problems.

use actix_web::http::header::{self, HeaderName, HeaderValue};

/// `auth.users (email)`: one account per (normalised) email.
pub const USERS_EMAIL_KEY: &str = "users_email_key";
/// `auth.roles (name)`.
pub const ROLES_PKEY: &str = "roles_pkey";
/// `auth.user_roles (role)` → `auth.roles`: granting a role nobody defined.
pub const USER_ROLES_ROLE_FKEY: &str = "user_roles_role_fkey";
/// `auth.api_keys (user_id)` → `auth.users`: a key for an account deleted meanwhile.
pub const API_KEYS_USER_FKEY: &str = "api_keys_user_id_fkey";

crate::domain_errors! {
    pub enum AuthError {
        #[problem(CONFLICT, "email_taken")]
        #[error("An account with this email already exists.")]
        EmailTaken,
        #[problem(BAD_REQUEST, "invalid_token")]
        #[error("This link is invalid, used or expired.")]
        InvalidToken,
        /// Wrong email and wrong password alike: says nothing about which part was wrong.
        #[problem(UNAUTHORIZED, "invalid_credentials")]
        #[error("The email or password is wrong.")]
        InvalidCredentials,
        /// Sent with `Retry-After` (see [`AuthError::with_header`]).
        #[problem(TOO_MANY_REQUESTS, "login_locked")]
        #[error("Too many failed sign-ins. Try again in {0} s.")]
        LoginLocked(u64),
        #[problem(FORBIDDEN, "email_not_verified")]
        #[error("Verify your email address first.")]
        EmailNotVerified,
        #[problem(UNAUTHORIZED, "invalid_refresh_token")]
        #[error("Sign in again.")]
        InvalidRefreshToken,
        #[problem(UNAUTHORIZED, "refresh_token_reused")]
        #[error("This refresh token was already used; the session has been revoked. Sign in again.")]
        RefreshTokenReused,
        /// A valid token whose account is gone (deleted on another replica, say); sent with
        /// `WWW-Authenticate` like every kernel 401 (see [`AuthError::unauthenticated`]).
        #[problem(UNAUTHORIZED, "unauthorized")]
        #[error("No such account.")]
        NoAccount,
        #[problem(UNAUTHORIZED, "unauthorized")]
        #[error("The account this token belongs to no longer exists.")]
        AccountDeleted,
        #[problem(FORBIDDEN, "forbidden")]
        #[error("API keys cannot manage API keys; sign in.")]
        KeysCannotManageKeys,
        #[problem(NOT_FOUND, "not_found")]
        #[error("No such session.")]
        SessionNotFound,
        #[problem(NOT_FOUND, "not_found")]
        #[error("No such API key.")]
        ApiKeyNotFound,
        #[problem(NOT_FOUND, "not_found")]
        #[error("No such user.")]
        UserNotFound,
        #[problem(NOT_FOUND, "not_found")]
        #[error("No such role.")]
        RoleNotFound,
        #[problem(NOT_FOUND, "not_found")]
        #[error("That user does not hold that role.")]
        RoleNotHeld,
        #[problem(CONFLICT, "role_exists")]
        #[error("The role {0} already exists.")]
        RoleExists(String),
        #[problem(CONFLICT, "builtin_role")]
        #[error("Built-in roles cannot be changed or deleted.")]
        BuiltinRole,
        /// Delegated administration never escalates: a granter hands out, and a role manager
        /// edits, only what it holds itself.
        #[problem(FORBIDDEN, "forbidden")]
        #[error("{0}")]
        BeyondOwnRights(String),
    }
}

impl AuthError {
    /// This problem with a response header (`Retry-After`, ...), which the enum's variants
    /// cannot carry: passed through as the kernel problem it renders as.
    pub fn with_header(self, name: HeaderName, value: HeaderValue) -> Self {
        Self::Platform(self.to_api().header(name, value))
    }

    /// A 401 with `WWW-Authenticate: Bearer`, as RFC 9110 asks of every 401 to a bearer.
    pub fn unauthenticated(self) -> Self {
        self.with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
    }
}
