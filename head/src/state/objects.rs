//! Object directory commands of `ControlState::apply`: copies added by puts and pulls, and
//! copies removed by evictions; an object whose last copy goes away is rebuilt from lineage or
//! becomes LOST ([`super::lineage`]).

use xnai_proto::ids::{ObjectId, WorkerId};

use super::ControlState;
use super::apply::pending_object_for_put;
use super::command::{ApplyError, Outcome};
use super::types::*;

impl ControlState {
    pub(super) fn add_copy(
        &mut self,
        object_id: ObjectId,
        worker_id: WorkerId,
        size: u64,
        crc32: u32,
        kind: CopyKind,
    ) -> Outcome {
        if !self.worker_alive(&worker_id) {
            return Outcome::Rejected(ApplyError::UnknownWorker(worker_id));
        }
        match (kind, self.objects.get_mut(&object_id)) {
            (CopyKind::Put, None) => {
                if self.freed_index.contains(&object_id) {
                    return Outcome::Rejected(ApplyError::Conflict(format!(
                        "object {object_id} was freed; a put cannot bring it back"
                    )));
                }
                if object_id.producing_task().is_some() {
                    return Outcome::Rejected(ApplyError::Conflict(format!(
                        "object id {object_id} names a task output; put objects end in 00"
                    )));
                }
                let mut record = pending_object_for_put();
                record.state = ObjectState::Ready;
                record.size = size;
                record.crc32 = crc32;
                record.locations.insert(worker_id);
                self.objects.insert(object_id, record);
                Outcome::Applied
            }
            (CopyKind::Put, Some(o))
                if o.state == ObjectState::Ready && o.size == size && o.crc32 == crc32 =>
            {
                o.locations.insert(worker_id);
                Outcome::Applied
            }
            (CopyKind::Put, Some(_)) => Outcome::Rejected(ApplyError::Conflict(format!(
                "object {object_id} already exists"
            ))),
            (CopyKind::Pulled, Some(o))
                if matches!(o.state, ObjectState::Ready | ObjectState::Lost) && o.size == size =>
            {
                o.state = ObjectState::Ready;
                o.error = None;
                o.locations.insert(worker_id);
                Outcome::Applied
            }
            (CopyKind::Pulled, _) => Outcome::Ignored(format!("object {object_id} is not ready")),
        }
    }

    pub(super) fn remove_copies(
        &mut self,
        worker_id: WorkerId,
        object_ids: &[ObjectId],
        reason: &str,
    ) -> Outcome {
        for id in object_ids {
            let Some(o) = self.objects.get_mut(id) else {
                continue;
            };
            o.locations.remove(&worker_id);
            if o.state == ObjectState::Ready && o.locations.is_empty() {
                self.object_lost(*id, worker_id, reason);
            }
        }
        Outcome::Applied
    }
}
