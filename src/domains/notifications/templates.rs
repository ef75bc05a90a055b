//! Email templates (minijinja): built-in ones compiled in, overridable file by file from
//! `notifications.templates_dir`. A variable missing from the context is an error, never an
//! empty string in a customer's mail.

use std::path::PathBuf;

use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

macro_rules! builtin {
    ($($name:literal),* $(,)?) => {
        fn builtin(name: &str) -> Option<&'static str> {
            match name {
                $($name => Some(include_str!(concat!("templates/", $name))),)*
                _ => None,
            }
        }
    };
}

builtin! {
    "layout.html",
    "verify-email.subject", "verify-email.txt", "verify-email.html",
    "reset-password.subject", "reset-password.txt", "reset-password.html",
    "password-changed.subject", "password-changed.txt", "password-changed.html",
    "welcome.subject", "welcome.txt", "welcome.html",
    "order-confirmation.subject", "order-confirmation.txt", "order-confirmation.html",
    "payment-failed.subject", "payment-failed.txt", "payment-failed.html",
    "vendor-approved.subject", "vendor-approved.txt", "vendor-approved.html",
}

pub struct Templates {
    env: Environment<'static>,
}

pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl Templates {
    pub fn new(overrides: Option<PathBuf>) -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_loader(move |name| {
            if let Some(dir) = &overrides {
                let path = dir.join(name);
                if path.is_file() {
                    return std::fs::read_to_string(&path).map(Some).map_err(|e| {
                        minijinja::Error::new(
                            minijinja::ErrorKind::TemplateNotFound,
                            format!("{path:?}: {e}"),
                        )
                    });
                }
            }
            Ok(builtin(name).map(str::to_owned))
        });
        Self { env }
    }

    /// Renders `<name>.subject`, `.txt` and `.html` with one context.
    pub fn render(
        &self,
        name: &str,
        context: impl Serialize,
    ) -> Result<Rendered, minijinja::Error> {
        let ctx = minijinja::Value::from(minijinja::value::Serde(&context));
        let part = |ext: &str| {
            self.env
                .get_template(&format!("{name}.{ext}"))?
                .render(&ctx)
        };
        let subject = part("subject")?.trim().to_owned();
        let subject_ctx = minijinja::context! { subject => subject.clone(), ..ctx.clone() };
        let html = self
            .env
            .get_template(&format!("{name}.html"))?
            .render(&subject_ctx)?;
        Ok(Rendered {
            subject,
            text: part("txt")?,
            html,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_render_and_missing_variables_fail() {
        let t = Templates::new(None);
        let ctx = minijinja::context! {
            app_name => "Shop", first_name => "Ada", link => "https://x/verify?token=abc",
            expires_at => "tomorrow", unsubscribe_url => ()
        };
        let r = t.render("verify-email", &ctx).unwrap();
        assert_eq!(r.subject, "Confirm your email address");
        assert!(r.text.contains("https://x/verify?token=abc"));
        // HTML escaping writes `/` as `&#x2f;`, which browsers read back as `/`.
        assert!(
            r.html
                .replace("&#x2f;", "/")
                .contains("href=\"https://x/verify?token=abc\"")
        );
        assert!(
            t.render("verify-email", minijinja::context! { app_name => "Shop" })
                .is_err()
        );
    }
}
