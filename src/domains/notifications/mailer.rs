//! Delivery: lettre over SMTP when `notifications.smtp_url` is set, otherwise .eml files in
//! `notifications.outbox_dir` (and a log line), so development never loses a message.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use super::repo::MessageRow;
use super::settings::NotificationSettings;

pub enum Mailer {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
    },
    Files {
        dir: PathBuf,
        from: Mailbox,
    },
}

impl Mailer {
    pub fn new(settings: &NotificationSettings) -> anyhow::Result<Self> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|e| anyhow::anyhow!("notifications.from: {e}"))?;
        let url = settings.smtp_url.expose_secret();
        if url.is_empty() {
            return Ok(Self::Files {
                dir: settings.outbox_dir.clone(),
                from,
            });
        }
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| anyhow::anyhow!("notifications.smtp_url: {e}"))?
            .timeout(Some(Duration::from_secs(settings.timeout_secs)))
            .build();
        Ok(Self::Smtp { transport, from })
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Smtp { .. } => "smtp".into(),
            Self::Files { dir, .. } => format!("files in {}", dir.display()),
        }
    }

    /// Health: the SMTP server answers (or the outbox folder is writable).
    pub async fn check(&self) -> anyhow::Result<()> {
        match self {
            Self::Smtp { transport, .. } => {
                anyhow::ensure!(
                    transport.test_connection().await?,
                    "the SMTP server did not accept a connection"
                );
            }
            Self::Files { dir, .. } => {
                tokio::fs::create_dir_all(dir).await?;
                let probe = dir.join(".health");
                tokio::fs::write(&probe, b"ok").await?;
                tokio::fs::remove_file(&probe).await?;
            }
        }
        Ok(())
    }

    fn build(&self, m: &MessageRow) -> anyhow::Result<Message> {
        let from = match self {
            Self::Smtp { from, .. } | Self::Files { from, .. } => from.clone(),
        };
        let mut builder = Message::builder()
            .from(from)
            .to(m.to_address.parse()?)
            .subject(&m.subject)
            .message_id(Some(format!("<{}@basalt>", m.id)));
        if let Some(url) = &m.unsubscribe_url {
            // RFC 8058 one-click unsubscribe: mail clients POST to the URL.
            builder = builder
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe"),
                    format!("<{url}>"),
                ))
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                    "List-Unsubscribe=One-Click".into(),
                ));
        }
        Ok(builder.multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(m.text_body.clone()),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(m.html_body.clone()),
                ),
        )?)
    }

    pub async fn send(&self, m: &MessageRow) -> anyhow::Result<()> {
        let message = self.build(m)?;
        match self {
            Self::Smtp { transport, .. } => {
                transport.send(message).await?;
            }
            Self::Files { dir, .. } => {
                tokio::fs::create_dir_all(dir).await?;
                let path = dir.join(format!("{}.eml", m.id));
                // Write then rename, so a reader never sees half a message.
                let tmp = dir.join(format!(".{}.eml.tmp", m.id));
                tokio::fs::write(&tmp, message.formatted()).await?;
                tokio::fs::rename(&tmp, &path).await?;
                tracing::info!(to = %m.to_address, subject = %m.subject, path = %path.display(), "no SMTP configured: message written to the outbox folder");
            }
        }
        Ok(())
    }
}
