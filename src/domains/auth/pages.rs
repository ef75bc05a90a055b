//! The pages the emailed links open, served by Basalt itself so the links work with no front
//! end: `/pages/verify-email`, `/pages/reset-password`, `/pages/forgot-password`. Plain
//! server-rendered HTML forms, no script. A GET only shows a form (mail scanners that fetch
//! links consume nothing); its POST does the work. No cookie or session is involved, and the
//! POST carries the single-use token itself, so a cross-site form cannot forge one (nothing
//! to ride on). Deployments with their own front end point `notifications.links_base_url`
//! at it instead.

use actix_web::http::StatusCode;
use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::error::AuthError;
use super::passwords;
use super::state::State;
use crate::platform::Platform;
use crate::platform::http::rate_limit::RateLimiter;
use crate::platform::http::{Endpoint, Routes};

#[derive(OpenApi)]
#[openapi(paths(
    verify_page,
    verify_submit,
    reset_page,
    reset_submit,
    forgot_page,
    forgot_submit
))]
pub struct PagesApi;

pub fn configure(routes: &mut Routes) {
    routes
        .add(
            Endpoint::at("/pages/verify-email")
                .get(verify_page)
                .post(verify_submit),
        )
        .add(
            Endpoint::at("/pages/reset-password")
                .get(reset_page)
                .post(reset_submit),
        )
        .add(
            Endpoint::at("/pages/forgot-password")
                .get(forgot_page)
                .post(forgot_submit),
        );
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct TokenQuery {
    /// The token from the emailed link.
    #[serde(default)]
    token: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct TokenForm {
    token: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ResetForm {
    token: String,
    password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct EmailForm {
    email: String,
}

/// HTML-escapes text for element content and quoted attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page; `body` is HTML already.
fn page(status: StatusCode, title: &str, body: &str) -> HttpResponse {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\"><title>{title}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}}\
         input,button{{font-size:1rem;padding:.4rem;margin:.3rem 0}}</style></head>\
         <body><h1>{title}</h1>{body}</body></html>",
        title = escape(title),
    );
    HttpResponse::build(status)
        .content_type(ContentType::html())
        // The token is in the URL: keep it out of caches.
        .insert_header(("Cache-Control", "no-store"))
        .body(html)
}

/// A problem shown as a page, with its status.
fn failure(title: &str, error: AuthError) -> HttpResponse {
    let api = error.to_api();
    if api.status().is_server_error() {
        // Logged and answered as the problem it is.
        return actix_web::ResponseError::error_response(&api);
    }
    let detail = api
        .detail_text()
        .unwrap_or("Something went wrong.")
        .to_owned();
    let status = api.status();
    let mut text = escape(&detail);
    for e in api.field_errors() {
        text.push_str(&format!("<br>{}", escape(&e.message)));
    }
    page(status, title, &format!("<p>{text}</p>"))
}

fn token_form(action: &str, token: &str, fields: &str, button: &str) -> String {
    format!(
        "<form method=\"post\" action=\"{action}\">\
         <input type=\"hidden\" name=\"token\" value=\"{token}\">{fields}\
         <p><button type=\"submit\">{button}</button></p></form>",
        token = escape(token),
    )
}

/// The page of a verification link: a button that confirms.
#[utoipa::path(
    get, path = "/pages/verify-email", tag = "auth", params(TokenQuery),
    responses((status = 200, description = "An HTML form", content_type = "text/html", body = String))
)]
async fn verify_page(query: web::Query<TokenQuery>) -> HttpResponse {
    let form = token_form("verify-email", &query.token, "", "Confirm my email address");
    page(StatusCode::OK, "Confirm your email address", &form)
}

/// Confirms the email address (the form of the verification page); 400 page for a bad token.
#[utoipa::path(
    post, path = "/pages/verify-email", tag = "auth",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Confirmed", content_type = "text/html", body = String),
        (status = 400, description = "Invalid, used or expired token", content_type = "text/html", body = String),
    )
)]
async fn verify_submit(
    platform: web::Data<Platform>,
    state: State,
    form: web::Form<TokenForm>,
) -> HttpResponse {
    let title = "Email address confirmed";
    match super::accounts::verify(&platform, &state, &form.token).await {
        Ok(_) => page(
            StatusCode::OK,
            title,
            "<p>Thank you. You can close this page and sign in.</p>",
        ),
        Err(e) => failure("This link does not work", e),
    }
}

/// The page of a reset link: a form for the new password.
#[utoipa::path(
    get, path = "/pages/reset-password", tag = "auth", params(TokenQuery),
    responses((status = 200, description = "An HTML form", content_type = "text/html", body = String))
)]
async fn reset_page(query: web::Query<TokenQuery>) -> HttpResponse {
    let fields = "<p><label>New password<br><input type=\"password\" name=\"password\" \
                  autocomplete=\"new-password\" required minlength=\"8\"></label></p>";
    let form = token_form("reset-password", &query.token, fields, "Set the password");
    page(StatusCode::OK, "Choose a new password", &form)
}

/// Sets the new password (the form of the reset page); every session, API key and webhook
/// endpoint of the account is revoked. 400 page for a bad token, 422 for a weak password.
#[utoipa::path(
    post, path = "/pages/reset-password", tag = "auth",
    request_body(content = ResetForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Changed", content_type = "text/html", body = String),
        (status = 400, description = "Invalid, used or expired token", content_type = "text/html", body = String),
        (status = 422, description = "Weak or common password", content_type = "text/html", body = String),
    )
)]
async fn reset_submit(
    platform: web::Data<Platform>,
    state: State,
    form: web::Form<ResetForm>,
) -> HttpResponse {
    let form = form.into_inner();
    match passwords::reset(&platform, &state, &form.token, form.password).await {
        Ok(()) => page(
            StatusCode::OK,
            "Password changed",
            "<p>Your password is changed and every session was signed out. Sign in again.</p>",
        ),
        Err(e) => failure("The password was not changed", e),
    }
}

/// The page of the "reset it now" link: asks for the email address.
#[utoipa::path(
    get, path = "/pages/forgot-password", tag = "auth",
    responses((status = 200, description = "An HTML form", content_type = "text/html", body = String))
)]
async fn forgot_page() -> HttpResponse {
    let form = "<form method=\"post\" action=\"forgot-password\"><p><label>Email address<br>\
                <input type=\"email\" name=\"email\" autocomplete=\"email\" required></label></p>\
                <p><button type=\"submit\">Send me a link</button></p></form>";
    page(StatusCode::OK, "Reset your password", form)
}

/// Mails a reset link (the form of the forgot-password page); the same page whether or not
/// the account exists.
#[utoipa::path(
    post, path = "/pages/forgot-password", tag = "auth",
    request_body(content = EmailForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "Sent, if the account exists", content_type = "text/html", body = String))
)]
async fn forgot_submit(
    platform: web::Data<Platform>,
    state: State,
    limiter: web::Data<RateLimiter>,
    form: web::Form<EmailForm>,
) -> HttpResponse {
    let email = form.email.trim();
    if email.is_empty() || email.len() > 254 {
        return forgot_page().await;
    }
    match passwords::send_reset(&platform, &state, &limiter, email).await {
        Ok(()) => page(
            StatusCode::OK,
            "Check your mail",
            "<p>If an account uses this address, a link to reset its password is on its way.</p>",
        ),
        Err(e) => failure("Something went wrong", e),
    }
}
