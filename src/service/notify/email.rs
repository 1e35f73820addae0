//! Email: which events mail whom, the templates that write the messages (plain text and
//! HTML), and the transport (`log` by default, so a new install needs no mail server; or
//! SMTP through `lettre`).
//!
//! Each email has two template files a store can edit in `[email] templates_dir`:
//! `<name>.txt` with a `subject` and a `body` block, and `<name>.html` (HTML-escaped, most
//! extend `layout.html`). A file missing there falls back to the built-in copy. Templates see
//! the event's `data`, the `shop` (`name`, `base_url`) and a `money` filter for
//! `{amount, currency}` values.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use minijinja::{Environment, Value};

use crate::domain::Currency;

/// The emails, by the event that sends them, and who receives them.
const ROUTES: &[(&str, &str, Recipient)] = &[
    ("user_registered", "welcome", Recipient::Payload),
    ("email_verification_requested", "email_verification", Recipient::Payload),
    ("password_reset_requested", "password_reset", Recipient::Payload),
    ("order_placed", "order_placed", Recipient::Payload),
    ("order_confirmed", "order_confirmed", Recipient::Payload),
    ("order_shipped", "order_shipped", Recipient::Payload),
    ("order_delivered", "order_delivered", Recipient::Payload),
    ("order_cancelled", "order_cancelled", Recipient::Payload),
    ("payment_failed", "payment_failed", Recipient::Payload),
    ("refund_issued", "refund_issued", Recipient::Payload),
    ("cart_abandoned", "abandoned_cart", Recipient::Payload),
    ("back_in_stock", "back_in_stock", Recipient::Payload),
    ("price_drop", "price_drop", Recipient::Payload),
    ("low_stock", "low_stock", Recipient::Operations),
];

/// Every template file, built in.
const BUILT_IN: &[(&str, &str)] = &[
    ("layout.html", include_str!("../../../templates/email/layout.html")),
    ("welcome.txt", include_str!("../../../templates/email/welcome.txt")),
    ("welcome.html", include_str!("../../../templates/email/welcome.html")),
    (
        "email_verification.txt",
        include_str!("../../../templates/email/email_verification.txt"),
    ),
    (
        "email_verification.html",
        include_str!("../../../templates/email/email_verification.html"),
    ),
    (
        "password_reset.txt",
        include_str!("../../../templates/email/password_reset.txt"),
    ),
    (
        "password_reset.html",
        include_str!("../../../templates/email/password_reset.html"),
    ),
    (
        "order_placed.txt",
        include_str!("../../../templates/email/order_placed.txt"),
    ),
    (
        "order_placed.html",
        include_str!("../../../templates/email/order_placed.html"),
    ),
    (
        "order_confirmed.txt",
        include_str!("../../../templates/email/order_confirmed.txt"),
    ),
    (
        "order_confirmed.html",
        include_str!("../../../templates/email/order_confirmed.html"),
    ),
    (
        "order_shipped.txt",
        include_str!("../../../templates/email/order_shipped.txt"),
    ),
    (
        "order_shipped.html",
        include_str!("../../../templates/email/order_shipped.html"),
    ),
    (
        "order_delivered.txt",
        include_str!("../../../templates/email/order_delivered.txt"),
    ),
    (
        "order_delivered.html",
        include_str!("../../../templates/email/order_delivered.html"),
    ),
    (
        "order_cancelled.txt",
        include_str!("../../../templates/email/order_cancelled.txt"),
    ),
    (
        "order_cancelled.html",
        include_str!("../../../templates/email/order_cancelled.html"),
    ),
    (
        "payment_failed.txt",
        include_str!("../../../templates/email/payment_failed.txt"),
    ),
    (
        "payment_failed.html",
        include_str!("../../../templates/email/payment_failed.html"),
    ),
    (
        "refund_issued.txt",
        include_str!("../../../templates/email/refund_issued.txt"),
    ),
    (
        "refund_issued.html",
        include_str!("../../../templates/email/refund_issued.html"),
    ),
    (
        "abandoned_cart.txt",
        include_str!("../../../templates/email/abandoned_cart.txt"),
    ),
    (
        "abandoned_cart.html",
        include_str!("../../../templates/email/abandoned_cart.html"),
    ),
    (
        "back_in_stock.txt",
        include_str!("../../../templates/email/back_in_stock.txt"),
    ),
    (
        "back_in_stock.html",
        include_str!("../../../templates/email/back_in_stock.html"),
    ),
    (
        "price_drop.txt",
        include_str!("../../../templates/email/price_drop.txt"),
    ),
    (
        "price_drop.html",
        include_str!("../../../templates/email/price_drop.html"),
    ),
    ("low_stock.txt", include_str!("../../../templates/email/low_stock.txt")),
    (
        "low_stock.html",
        include_str!("../../../templates/email/low_stock.html"),
    ),
];

/// Every email template name.
pub fn template_names() -> impl Iterator<Item = &'static str> {
    ROUTES.iter().map(|(_, name, _)| *name)
}

#[derive(Debug, Clone, Copy)]
enum Recipient {
    /// The `email` of the event.
    Payload,
    /// `[email] operations_to`.
    Operations,
}

/// How email leaves.
#[derive(Debug, Clone)]
pub enum Transport {
    /// Written to the log.
    Log,
    /// An SMTP server.
    Smtp {
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// `none`, `starttls` or `tls`.
        security: String,
        /// User and password, when the server wants them.
        credentials: Option<(String, String)>,
    },
}

/// The settings of [`Mailer`].
#[derive(Debug, Clone)]
pub struct EmailSettings {
    /// The transport.
    pub transport: Transport,
    /// The sender.
    pub from: String,
    /// Where low-stock alerts go.
    pub operations_to: String,
    /// The editable templates.
    pub templates_dir: PathBuf,
    /// Links in emails start with this.
    pub base_url: String,
    /// The store's name.
    pub shop_name: String,
    /// The store's currency.
    pub currency: Currency,
}

/// A rendered email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Recipient.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain text.
    pub text: String,
    /// HTML.
    pub html: String,
}

/// The email sink.
pub struct Mailer {
    settings: EmailSettings,
    from: Mailbox,
    env: Environment<'static>,
    smtp: Option<AsyncSmtpTransport<Tokio1Executor>>,
}

impl Mailer {
    /// Builds the sink; fails on a bad sender or SMTP setting, or a template that does not
    /// parse.
    pub fn new(settings: EmailSettings) -> anyhow::Result<Mailer> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|e| anyhow::anyhow!("[email] from {:?}: {e}", settings.from))?;
        let dir = settings.templates_dir.clone();
        let mut env = Environment::new();
        env.set_loader(move |name| {
            match std::fs::read_to_string(dir.join(name)) {
                Ok(text) => return Ok(Some(text)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(minijinja::Error::new(
                        minijinja::ErrorKind::InvalidOperation,
                        format!("reading template {name}: {e}"),
                    ))
                }
            }
            Ok(BUILT_IN.iter().find(|(n, _)| *n == name).map(|(_, t)| (*t).to_owned()))
        });
        let currency = settings.currency;
        env.add_filter("money", move |v: Value| -> String {
            let amount = v
                .get_attr("amount")
                .ok()
                .and_then(|a| i64::try_from(a).ok())
                .unwrap_or(0);
            let currency = v
                .get_attr("currency")
                .ok()
                .and_then(|c| c.as_str().and_then(Currency::parse))
                .unwrap_or(currency);
            currency.format(amount)
        });
        for name in template_names() {
            for ext in ["txt", "html"] {
                env.get_template(&format!("{name}.{ext}"))
                    .map_err(|e| anyhow::anyhow!("email template {name}.{ext}: {e:#}"))?;
            }
        }
        let smtp = match &settings.transport {
            Transport::Log => None,
            Transport::Smtp {
                host,
                port,
                security,
                credentials,
            } => {
                let tls = || TlsParameters::new(host.clone()).map_err(|e| anyhow::anyhow!("[email] TLS: {e}"));
                let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
                    .port(*port)
                    .timeout(Some(Duration::from_secs(10)));
                builder = match security.as_str() {
                    "none" => builder.tls(Tls::None),
                    "starttls" => builder.tls(Tls::Required(tls()?)),
                    "tls" => builder.tls(Tls::Wrapper(tls()?)),
                    other => anyhow::bail!("[email] smtp_security must be none, starttls or tls, not {other:?}"),
                };
                if let Some((user, password)) = credentials {
                    builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
                }
                Some(builder.build())
            }
        };
        Ok(Mailer {
            settings,
            from,
            env,
            smtp,
        })
    }

    /// Whether `topic` sends an email.
    pub fn wants(&self, topic: &str, payload: &serde_json::Value) -> bool {
        self.route(topic, payload).is_some()
    }

    fn route(&self, topic: &str, payload: &serde_json::Value) -> Option<(&'static str, String)> {
        let (_, name, recipient) = ROUTES.iter().find(|(t, _, _)| *t == topic)?;
        let to = match recipient {
            Recipient::Payload => payload.get("email")?.as_str()?.to_owned(),
            Recipient::Operations => self.settings.operations_to.clone(),
        };
        (!to.trim().is_empty()).then_some((name, to))
    }

    /// Renders the email of an event (`None`: the event sends none).
    pub fn render(&self, topic: &str, data: &serde_json::Value) -> Result<Option<Rendered>, String> {
        let Some((name, to)) = self.route(topic, data) else {
            return Ok(None);
        };
        let ctx = minijinja::context! {
            data => Value::from_serialize(data),
            shop => minijinja::context! { name => self.settings.shop_name, base_url => self.settings.base_url },
        };
        let text = self
            .env
            .get_template(&format!("{name}.txt"))
            .map_err(|e| format!("{e:#}"))?;
        let mut captured = text.render_captured(&ctx).map_err(|e| format!("{e:#}"))?;
        let (subject, body) =
            captured.with_state_mut(|state| (state.render_block("subject"), state.render_block("body")));
        let (subject, body) = (
            subject.map_err(|e| format!("{e:#}"))?,
            body.map_err(|e| format!("{e:#}"))?,
        );
        let html = self
            .env
            .get_template(&format!("{name}.html"))
            .and_then(|t| t.render(&ctx))
            .map_err(|e| format!("{e:#}"))?;
        Ok(Some(Rendered {
            to,
            subject: subject.trim().to_owned(),
            text: body.trim().to_owned() + "\n",
            html,
        }))
    }

    /// Sends a rendered email (to the log, or to the SMTP server).
    pub async fn send(&self, email: Rendered, event_id: &str) -> Result<(), String> {
        let Some(smtp) = &self.smtp else {
            tracing::info!(
                to = %email.to,
                subject = %email.subject,
                event = event_id,
                text = %email.text,
                "email (log transport)"
            );
            return Ok(());
        };
        let to: Mailbox = email.to.parse().map_err(|e| format!("recipient {:?}: {e}", email.to))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject)
            .message_id(Some(format!("<{event_id}@storefront>")))
            .multipart(MultiPart::alternative_plain_html(email.text, email.html))
            .map_err(|e| format!("building the message: {e}"))?;
        smtp.send(message).await.map(|_| ()).map_err(|e| format!("SMTP: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailer(dir: &std::path::Path) -> Mailer {
        Mailer::new(EmailSettings {
            transport: Transport::Log,
            from: "Shop <shop@example.com>".into(),
            operations_to: "ops@example.com".into(),
            templates_dir: dir.to_path_buf(),
            base_url: "https://shop.example".into(),
            shop_name: "Shop".into(),
            currency: Currency::parse("USD").unwrap(),
        })
        .unwrap()
    }

    fn sample(topic: &str) -> serde_json::Value {
        serde_json::json!({
            "email": "ada@example.com", "name": "Ada <script>", "token": "tok123", "expires_at": "2026-12-01T12:00:00Z",
            "order_id": "0190", "number": "SF-100001", "total": { "amount": 2599, "currency": "USD" },
            "carrier": "UPS", "tracking_number": "1Z999", "reason": "card_declined", "amount": 1000,
            "item_count": 2, "items": [{ "title": "Lamp", "quantity": 2 }], "sku": "LAMP-1", "title": "Lamp",
            "available": 3, "threshold": 5, "topic": topic,
            "price": { "amount": 1500, "currency": "USD" }, "previous_price": { "amount": 2000, "currency": "USD" },
        })
    }

    #[test]
    fn every_template_renders_text_and_escaped_html() {
        let m = mailer(std::path::Path::new("/nonexistent"));
        for (topic, name, _) in ROUTES {
            let email = m
                .render(topic, &sample(topic))
                .unwrap()
                .unwrap_or_else(|| panic!("{topic} mails"));
            assert!(
                !email.subject.is_empty() && !email.subject.contains('\n'),
                "{name}: {email:?}"
            );
            assert!(email.text.len() > 20, "{name}: {email:?}");
            assert!(email.html.contains("<h1>"), "{name}: {email:?}");
            assert!(!email.html.contains("<script>"), "{name} escapes: {}", email.html);
            let to = if *topic == "low_stock" {
                "ops@example.com"
            } else {
                "ada@example.com"
            };
            assert_eq!(email.to, to);
        }
        let shipped = m.render("order_shipped", &sample("order_shipped")).unwrap().unwrap();
        assert!(
            shipped.text.contains("1Z999") && shipped.text.contains("UPS"),
            "{shipped:?}"
        );
        let placed = m.render("order_placed", &sample("order_placed")).unwrap().unwrap();
        assert!(placed.text.contains("25.99 USD"), "{placed:?}");
        let reset = m.render("password_reset_requested", &sample("x")).unwrap().unwrap();
        assert!(
            reset.text.contains("https://shop.example/reset-password?token=tok123"),
            "{reset:?}"
        );
        assert_eq!(
            m.render("review_submitted", &sample("x")).unwrap(),
            None,
            "no template, no email"
        );
    }

    #[test]
    fn a_stores_own_template_file_wins_over_the_built_in_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("welcome.txt"),
            "{% block subject %}Hi {{ data.name }}!{% endblock %}{% block body %}Custom body for {{ data.email }}{% endblock %}",
        )
        .unwrap();
        let email = mailer(dir.path())
            .render("user_registered", &sample("x"))
            .unwrap()
            .unwrap();
        assert_eq!(email.subject, "Hi Ada <script>!");
        assert_eq!(email.text, "Custom body for ada@example.com\n");
    }
}
