//! `xnai head add|remove|list`: membership of the Raft group of heads.

use anyhow::Result;
use serde_json::json;

use super::HeadCommand;
use super::output::{print_json, table};
use xnai_sdk::Client;

/// Runs one `xnai head` command.
pub(super) async fn head(client: Client, command: HeadCommand, json: bool) -> Result<()> {
    match command {
        HeadCommand::Add { address } => {
            let id = client.add_head(&address).await?;
            if json {
                print_json(&json!({ "id": id, "address": address }))
            } else {
                println!("added head {id} ({address})");
                Ok(())
            }
        }
        HeadCommand::Remove { id } => {
            client.remove_head(id).await?;
            if json {
                print_json(&json!({ "id": id, "removed": true }))
            } else {
                println!("removed head {id}");
                Ok(())
            }
        }
        HeadCommand::List => {
            let s = client.status().await?;
            if json {
                return print_json(&s.heads);
            }
            let rows: Vec<Vec<String>> = s
                .heads
                .iter()
                .map(|h| {
                    vec![
                        h.id.to_string(),
                        h.address.clone(),
                        h.role.clone(),
                        h.term.to_string(),
                        h.commit_index.to_string(),
                        h.pid.to_string(),
                    ]
                })
                .collect();
            print!(
                "{}",
                table(&["HEAD", "ADDRESS", "ROLE", "TERM", "COMMIT", "PID"], &rows)
            );
            Ok(())
        }
    }
}
