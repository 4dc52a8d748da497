//! Placement and model distribution: an actor asking for more memory than any worker has is
//! refused with what it needed and the best worker's free memory; a model put into the
//! cluster as an object is pulled into the arena of the worker that hosts the actor (a
//! labelled worker started after the put) and served from there.

use std::collections::BTreeMap;
use std::time::Duration;

use xnai_sdk::{ActorOptions, GenerateRequest, InferenceParams, ModelSource, ObjectRef, Resources};
use xnai_tests::{ClusterOptions, init_tracing, start_cluster, wait_until};

use super::{QUESTION, model_path};

#[test]
fn t20_memory_refusal_and_object_model() -> anyhow::Result<()> {
    init_tracing();
    let model = model_path()?;
    let model_bytes = std::fs::metadata(&model)?.len();
    let mut c = start_cluster(ClusterOptions {
        arena_bytes: "512MiB".into(),
        ..ClusterOptions::default()
    })?;

    tracing::info!("--- phase: an actor no worker can hold is refused, saying why");
    let model_arg = format!("model={}", model.display());
    let err = c.xnai_err(&[
        "actor",
        "create",
        "inference",
        "--name",
        "huge",
        "--",
        &model_arg,
        "ctx=32768",
        "slots=64",
    ])?;
    assert!(
        err.contains("inference actor needs") && err.contains("GiB of memory"),
        "{err}"
    );
    assert!(
        err.contains("the best worker has") && err.contains("free"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let list = c.xnai_ok(&["actor", "list", "--json"])?;
    assert!(!list.contains("huge"), "{list}");

    tracing::info!("--- phase: put the model, then start a labelled worker to serve it");
    let id = c.xnai_ok(&["object", "put", &model.display().to_string()])?;
    let object = ObjectRef::parse(&id)?;
    let address = c.add_worker(&["--labels", "role=llm"])?;

    tracing::info!("--- phase: the actor on that worker pulls the model into its arena");
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let client = c.client().await?;
        let params = InferenceParams {
            ctx: 256,
            ..InferenceParams::default()
        };
        let planned = client
            .plan_inference(&ModelSource::Object(object), &params)
            .await?;
        assert_eq!(planned.model.file_bytes, model_bytes);
        let options = ActorOptions {
            name: Some("llm2".into()),
            resources: Some(Resources {
                labels: BTreeMap::from([("role".to_string(), "llm".to_string())]),
                ..Resources::default()
            }),
            ..ActorOptions::default()
        };
        let actor = client
            .create_inference_actor(ModelSource::Object(object), params, options)
            .await?;
        let info = client.actor_info("llm2").await?;
        assert_eq!(info.address, address, "placed by label");
        let mut request = GenerateRequest::new(QUESTION);
        request.max_tokens = 16;
        let (text, stats) = client.generate(&actor, &request).await?;
        assert!(text.contains("Paris"), "{text:?} {stats:?}");
        let served = client.inference_info(&actor).await?;
        let path = served.config.model_path.display().to_string();
        assert!(
            path.contains("xnai-arena") && path.ends_with(&object.id().hex()),
            "served from {path}"
        );
        anyhow::Ok(())
    })?;
    wait_until(Duration::from_secs(10), "the pulled copy reported", || {
        let info: serde_json::Value =
            serde_json::from_str(&c.xnai_ok(&["object", "info", &id, "--json"])?)?;
        Ok(info.to_string().contains(&address))
    })?;
    let status = c.status()?;
    let worker = status["workers"]
        .as_array()
        .and_then(|ws| ws.iter().find(|w| w["address"] == address.as_str()))
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("labelled worker missing from {status}"))?;
    assert!(
        worker["arena_used"].as_u64().unwrap_or(0) >= model_bytes,
        "{worker}"
    );
    Ok(())
}
