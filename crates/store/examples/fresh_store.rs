//! Makes a new, empty shared store (a database and a bucket) on the servers
//! `scripts/services start` runs, for `scripts/bench push`; prints its settings as JSON:
//! {"database", "objects", "env": {AWS_*}}.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let config = runtime.block_on(sealwright_store::shared::testing::fresh())?;
    let env: serde_json::Map<String, serde_json::Value> = config
        .object_options
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    println!(
        "{}",
        serde_json::json!({"database": config.database, "objects": config.objects, "env": env})
    );
    Ok(())
}
