//! The seed-18 race, replayed step by step: a worker declared dead registers again under a new
//! id, a rebuild placed on it stores the same object again, and then the head's delete for the
//! old id arrives. The delete is fenced to the old id, so the new copy stays.

use std::sync::Mutex;

use futures::future::BoxFuture;
use xnai_proto::ids::{ObjectId, TaskId, WorkerId};

use super::*;
use crate::arena::{ArenaConfig, StoredMeta};
use crate::error::Result;
use crate::executor::{GrpcPuller, TaskArgSpec, TaskOutcome, TaskSpec};
use crate::functions::FunctionRegistry;
use crate::head_link::ReportedCopy;

/// A head link whose current registration the test sets.
#[derive(Default)]
struct Registrations(Mutex<Option<WorkerId>>);

impl ObjectReporter for Arc<Registrations> {
    fn object_added(
        &self,
        _: ObjectId,
        _: StoredMeta,
        _: ReportedCopy,
    ) -> BoxFuture<'static, Result<()>> {
        Box::pin(async { Ok(()) })
    }

    fn registered_as(&self) -> BoxFuture<'static, Option<WorkerId>> {
        let id = *self.0.lock().unwrap();
        Box::pin(async move { id })
    }
}

fn echo(task: TaskId) -> TaskSpec {
    TaskSpec {
        task_id: task,
        object_id: task.return_object(),
        function: "echo".into(),
        args: vec![TaskArgSpec::Inline(bytes::Bytes::from_static(b"hi"))],
        cpus: None,
    }
}

fn delete(object: ObjectId, meant_for: Option<WorkerId>) -> Request<pb::DeleteObjectsRequest> {
    Request::new(pb::DeleteObjectsRequest {
        object_ids: vec![object.hex()],
        worker_id: meant_for.map(|id| id.hex()).unwrap_or_default(),
    })
}

#[tokio::test]
async fn a_delete_for_the_old_registration_spares_the_rebuilt_copy() {
    use pb::worker_server::Worker;
    let root = tempfile::tempdir().unwrap();
    let (arena, _ev) = Arena::open(ArenaConfig {
        dir: Some(root.path().join("a")),
        capacity: 1 << 20,
        spill: None,
    })
    .unwrap();
    let head = Arc::new(Registrations::default());
    let reporter: Arc<dyn ObjectReporter> = Arc::new(Arc::clone(&head));
    let token = xnai_proto::auth::TokenInject::new("t").unwrap();
    let exec = Executor::new(
        arena.clone(),
        FunctionRegistry::with_builtins(1 << 20),
        Arc::new(GrpcPuller::new(token)),
        Arc::clone(&reporter),
    );
    let actors =
        Arc::new(ActorHost::start(crate::actors::ClassRegistry::with_builtins(), 1).unwrap());
    let svc = WorkerService::new(exec.clone(), actors, arena.clone(), reporter);
    let (old, new) = (WorkerId::random(), WorkerId::random());
    let task = TaskId::random();
    let out = task.return_object();

    tracing::info!("--- phase: registered as the old id, the task's output is stored here");
    *head.0.lock().unwrap() = Some(old);
    assert!(matches!(
        exec.execute(echo(task)).await,
        Ok(TaskOutcome::Stored(_))
    ));
    assert!(arena.contains(&out));

    tracing::info!("--- phase: declared dead; before registering again the worker drops it all");
    assert_eq!(exec.forget_all_objects(), 1);
    assert!(!arena.contains(&out));
    *head.0.lock().unwrap() = Some(new);

    tracing::info!("--- phase: the rebuild placed on the new id runs again and stores the output");
    assert!(matches!(
        exec.execute(echo(task)).await,
        Ok(TaskOutcome::Stored(_))
    ));
    assert!(
        arena.contains(&out),
        "a forgotten result is not returned from memory"
    );

    tracing::info!("--- phase: the head's delete of what the old id left arrives late");
    svc.delete_objects(delete(out, Some(old))).await.unwrap();
    assert!(
        arena.contains(&out),
        "a delete for the old registration removed the new copy"
    );

    tracing::info!("--- phase: a delete for the current id, or unfenced, still deletes");
    svc.delete_objects(delete(out, Some(new))).await.unwrap();
    assert!(!arena.contains(&out));
    assert!(matches!(
        exec.execute(echo(task)).await,
        Ok(TaskOutcome::Stored(_))
    ));
    svc.delete_objects(delete(out, None)).await.unwrap();
    assert!(!arena.contains(&out));
}
