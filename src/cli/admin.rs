//! `storefront admin create`: the first admin account, made on the box (server stopped), so a
//! new shop needs no admin key to get its first administrator.

use std::io::BufRead;

use anyhow::Context;
use rand::distributions::{Alphanumeric, DistString};

use crate::config::Config;
use crate::domain::user::{Password, RegisterInput, Role};
use crate::service::auth::Actor;

/// Creates an admin account for `email`, or gives an existing account admin rights. Without
/// `password_stdin` it makes a password and prints it once.
pub(super) fn create(config: Config, email: String, name: String, password_stdin: bool) -> anyhow::Result<()> {
    let (password, made) = if password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        (line.trim_end_matches(['\r', '\n']).to_owned(), false)
    } else {
        (Alphanumeric.sample_string(&mut rand::thread_rng(), 24), true)
    };
    let (_, services) = super::open_offline(&config).context(
        "opening the store (stop the server first, or promote a user with POST /api/v1/admin/users/{id}/role)",
    )?;
    let accounts = services.accounts.clone();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (id, existed) = runtime.block_on(async {
        if let Some(id) = accounts.user_id_by_email(&email)? {
            return Ok::<_, anyhow::Error>((id, true));
        }
        let input = RegisterInput {
            email: Some(email.clone()),
            password: Some(Password::new(password.clone())),
            name: Some(name),
        };
        let (user, _) = accounts.register(input).await.map_err(describe)?;
        Ok((user.id, false))
    })?;
    runtime
        .block_on(accounts.set_role(Actor::System, id, Role::Admin, None))
        .map_err(describe)?;
    if existed {
        eprintln!("{email} already had an account ({id}); it now has admin rights, and its password is unchanged");
    } else {
        eprintln!("created admin {email} ({id})");
        if made {
            // The only time this password is shown.
            println!("{password}");
            eprintln!("the line above is the password; sign in and change it (PATCH /api/v1/me)");
        }
    }
    Ok(())
}

/// A refusal with each invalid field spelled out.
fn describe(e: crate::service::ServiceError) -> anyhow::Error {
    match e {
        crate::service::ServiceError::Validation(fields) => {
            let listed: Vec<String> = fields.iter().map(|f| format!("{}: {}", f.field, f.message)).collect();
            anyhow::anyhow!("refused: {}", listed.join("; "))
        }
        other => other.into(),
    }
}
