//! `storefront eval-recs`: scores the recommendation models on the store's order history,
//! or exports their lists for a blind evaluation.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use storefront_storage::records::ProductRecord;

use crate::config::Config;
use crate::domain::Id;
use crate::service::history::{customer_email, customer_of_email, FEED};
use crate::service::reco::eval::{evaluate, personal_list, split, train, K};
use crate::service::reco::{past_orders, PastOrder};

fn lines(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

fn customer_of(o: &PastOrder) -> Option<String> {
    customer_of_email(&o.email).map(str::to_owned)
}

pub(super) fn run(
    config: Config,
    customers: &Path,
    export: Option<&Path>,
    anchors: Option<&Path>,
) -> anyhow::Result<()> {
    let (settings, services) = super::open_offline(&config)?;
    let started = Instant::now();
    let orders = past_orders(&services.store)?;
    let listed: Vec<String> = lines(customers)?;
    println!(
        "{} orders in the store, {} listed customers",
        orders.len(),
        listed.len()
    );
    let model_settings = settings.recommendations.model;
    let Some(dir) = export else {
        let set: HashSet<String> = listed.into_iter().collect();
        let (train_orders, test) = split(&orders, &set, customer_of);
        let r = evaluate(model_settings, &train_orders, &test);
        println!(
            "held out the last order of {} customers; trained on {} orders in {:.1}s",
            r.customers,
            train_orders.len(),
            started.elapsed().as_secs_f64()
        );
        println!(
            "{:<36} {:>8} {:>12} {:>10}",
            "list", "lists", "hit-rate@10", "recall@10"
        );
        for (name, s) in [
            ("personalized", r.personalized),
            ("baseline: global popularity", r.popularity),
            ("frequently-bought-together (LOO)", r.fbt),
            ("baseline: co-occurrence cosine (LOO)", r.cosine),
        ] {
            println!("{name:<36} {:>8} {:>12.4} {:>10.4}", s.n, s.hit_rate(), s.recall());
        }
        println!(
            "personalized vs popularity, hit-rate: {:+.1}%; fbt vs cosine, recall: {:+.1}%",
            (r.personalized.hit_rate() / r.popularity.hit_rate().max(1e-9) - 1.0) * 100.0,
            (r.fbt.recall() / r.cosine.recall().max(1e-9) - 1.0) * 100.0
        );
        return Ok(());
    };
    std::fs::create_dir_all(dir)?;
    let model = train(model_settings, orders.iter());
    let code_of = |id: Id| -> anyhow::Result<Option<String>> {
        Ok(services
            .store
            .get::<ProductRecord>(&id.to_bytes())?
            .and_then(|p| p.archived().external_id.as_ref().map(|e| e.to_string())))
    };
    let now = model.last_at_ms();
    let mut personal = std::io::BufWriter::new(std::fs::File::create(dir.join("personal.tsv"))?);
    for customer in &listed {
        let user = services.accounts.user_id_by_email(&customer_email(customer))?;
        for (rank, id) in personal_list(&model, user.as_ref(), now).into_iter().enumerate() {
            if let Some(code) = code_of(id)? {
                writeln!(personal, "{customer}\t{}\t{code}", rank + 1)?;
            }
        }
    }
    personal.flush()?;
    if let Some(anchors) = anchors {
        let mut fbt = std::io::BufWriter::new(std::fs::File::create(dir.join("fbt.tsv"))?);
        for anchor in lines(anchors)? {
            let Some(item) = services
                .catalog
                .product_by_external_id(FEED, &anchor)?
                .and_then(|id| model.item(&id))
            else {
                continue;
            };
            for (rank, (other, _)) in model.frequently_bought_together(item).iter().take(K).enumerate() {
                if let Some(code) = code_of(model.id(*other))? {
                    writeln!(fbt, "{anchor}\t{}\t{code}", rank + 1)?;
                }
            }
        }
        fbt.flush()?;
    }
    println!("wrote the lists to {}", dir.display());
    Ok(())
}
