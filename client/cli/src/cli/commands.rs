//! One function per `xnai` command: call the SDK or the launcher, then print the result for
//! people or as JSON. Output formats here are what scripts rely on (see the CLI contract).

use anyhow::{Context, Result};
use serde_json::json;
use xnai_proto::units::format_size;

use super::args::{client_config, parse_object_id, parse_task_args, timeout};
use super::output::{merge, print_json, table, value_json, write_value};
use super::{ActorCommand, Cli, Command, ObjectCommand, TaskCommand, TaskSpec};
use crate::launcher::{self, UpConfig};
use xnai_sdk::{ActorOptions, Client, ClusterStatus, ObjectInfo, TaskOptions};

/// Runs one parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    let json = cli.json;
    let connect = || async {
        Client::connect(client_config(&cli.head, cli.token.as_deref())?)
            .await
            .map_err(anyhow::Error::from)
    };
    match cli.command {
        Command::Up {
            heads,
            workers,
            data_dir,
            arena_bytes,
            spill_bytes,
            worker_cpus,
            worker_memory,
            detach,
        } => {
            up(
                UpConfig {
                    heads,
                    workers,
                    data_dir,
                    arena_bytes,
                    spill_bytes,
                    worker_cpus,
                    worker_memory,
                },
                detach,
                json,
            )
            .await
        }
        Command::Down { data_dir } => down(&data_dir, json).await,
        Command::Status => status(&connect().await?.status().await?, json),
        Command::Task {
            command: TaskCommand::Submit(spec),
        } => {
            let args = parse_task_args(&spec.args)?;
            let client = connect().await?;
            let r = submit(&client, spec, args).await?;
            if json {
                print_json(
                    &json!({ "object_id": r, "task_id": r.producing_task().map(|t| t.hex()) }),
                )
            } else {
                println!("{r}");
                Ok(())
            }
        }
        Command::Run {
            task,
            timeout: secs,
        } => {
            let wait = timeout(secs)?;
            let args = parse_task_args(&task.args)?;
            let client = connect().await?;
            let r = submit(&client, task, args).await?;
            let v = client.get(&r, wait).await?;
            print_value(json, json!({ "object_id": r }), &v)
        }
        Command::Object { command } => object(connect().await?, command, json).await,
        Command::Actor { command } => actor(connect().await?, command, json).await,
        Command::Head { command } => super::heads::head(connect().await?, command, json).await,
        Command::Generate(a) => super::inference::generate(connect().await?, a, json).await,
        Command::Embed(a) => super::inference::embed(connect().await?, a).await,
        Command::Plan(a) => super::inference::plan(a, json),
        Command::Index { command } => match command {
            super::rag::IndexCommand::Add(a) => {
                super::rag::index_add(connect().await?, a, json).await
            }
            super::rag::IndexCommand::Stats { actor } => {
                super::rag::index_stats(connect().await?, &actor).await
            }
        },
        Command::Search(a) => super::rag::search(connect().await?, a, json).await,
        Command::Ask(a) => super::rag::ask(connect().await?, a, json).await,
    }
}

async fn submit(
    client: &Client,
    spec: TaskSpec,
    args: Vec<xnai_sdk::Arg>,
) -> Result<xnai_sdk::ObjectRef> {
    let options = TaskOptions {
        max_retries: spec.max_retries,
        ..Default::default()
    };
    Ok(client.submit(&spec.function, args, options).await?)
}

fn print_value(json: bool, base: serde_json::Value, v: &[u8]) -> Result<()> {
    if json {
        print_json(&merge(base, value_json(v)))
    } else {
        write_value(&mut std::io::stdout().lock(), v)
    }
}

async fn up(cfg: UpConfig, detach: bool, json: bool) -> Result<()> {
    let cfg_arena = cfg.arena_bytes;
    let cluster = launcher::up(&cfg).await?;
    let r = &cluster.report;
    if json {
        print_json(r)?;
    } else {
        println!(
            "xnai cluster ready: {} head(s), {} worker(s), data dir {}",
            r.heads.len(),
            r.workers.len(),
            r.data_dir.display()
        );
        for (i, h) in r.heads.iter().enumerate() {
            println!("head-{} {h}", i + 1);
        }
        for w in &r.workers {
            println!(
                "worker-{} {} pid {}: {} CPU(s), {} memory, {} arena",
                w.index,
                w.address,
                w.pid.unwrap_or(0),
                w.cpus,
                format_size(w.memory_bytes),
                format_size(cfg_arena),
            );
        }
        if let Some(w) = &r.sizing_warning {
            eprintln!("xnai up: warning: {w}");
        }
        println!("XNAI_HEAD={}", r.heads.join(","));
        println!("XNAI_TOKEN={}", r.token);
    }
    if detach {
        return Ok(());
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    eprintln!("xnai up: running in the foreground; Ctrl-C stops the cluster");
    wait_for_stop_signal(cluster).await
}

async fn wait_for_stop_signal(mut cluster: launcher::Cluster) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = int.recv() => break,
            _ = term.recv() => break,
            _ = tick.tick() => {
                for msg in cluster.exited_children() {
                    eprintln!("xnai up: {msg}");
                }
            }
        }
    }
    eprintln!("xnai up: stopping the cluster");
    for o in cluster.stop().await {
        eprintln!("xnai up: {} (pid {}) {}", o.name, o.pid, o.how);
    }
    Ok(())
}

async fn down(dir: &std::path::Path, json: bool) -> Result<()> {
    let report = launcher::down(dir).await?;
    if json {
        return print_json(&report);
    }
    if report.stopped.is_empty() {
        println!("no cluster running from {}", dir.display());
    }
    for o in &report.stopped {
        println!("{} (pid {}) {}", o.name, o.pid, o.how);
    }
    for a in &report.removed_arenas {
        println!("removed arena {}", a.display());
    }
    Ok(())
}

fn status(s: &ClusterStatus, json: bool) -> Result<()> {
    if json {
        return print_json(s);
    }
    let heads: Vec<Vec<String>> = s
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
        table(
            &["HEAD", "ADDRESS", "ROLE", "TERM", "COMMIT", "PID"],
            &heads
        )
    );
    let workers: Vec<Vec<String>> = s
        .workers
        .iter()
        .map(|w| {
            vec![
                w.worker_id.clone(),
                w.address.clone(),
                w.pid.to_string(),
                w.state.clone(),
                format!("{}/{}", w.available.cpus, w.total.cpus),
                format!(
                    "{}/{}",
                    format_size(w.available.memory_bytes),
                    format_size(w.total.memory_bytes)
                ),
                format!(
                    "{}/{}",
                    format_size(w.arena_used),
                    format_size(w.arena_capacity)
                ),
                spilled(&w.spill),
                w.pressure.clone(),
                w.breaker.clone(),
                w.running_tasks.to_string(),
            ]
        })
        .collect();
    println!();
    let headers = [
        "WORKER",
        "ADDRESS",
        "PID",
        "STATE",
        "CPUS FREE/OFFERED",
        "MEMORY FREE/OFFERED",
        "ARENA USED",
        "SPILLED (OUT/BACK)",
        "PRESSURE",
        "BREAKER",
        "RUNNING",
    ];
    print!("{}", table(&headers, &workers));
    println!();
    println!(
        "actors {}  tasks {} ({} pending)  objects {}",
        s.actors, s.tasks, s.pending_tasks, s.objects
    );
    let z = &s.state;
    println!(
        "state {} entries, {}  (history {}, tombstones {}, requests {}, inline args {} of {})",
        z.entries(),
        format_size(z.approx_bytes),
        z.history,
        z.tombstones,
        z.requests,
        format_size(z.inline_arg_bytes),
        format_size(z.inline_arg_budget)
    );
    Ok(())
}

/// A worker's spill column: bytes on disk of the bound, then objects spilled / restored so far.
fn spilled(s: &xnai_sdk::SpillStatus) -> String {
    if s.capacity == 0 {
        return "off".into();
    }
    format!(
        "{}/{} ({}/{})",
        format_size(s.used),
        format_size(s.capacity),
        s.spills,
        s.restores
    )
}

async fn object(client: Client, command: ObjectCommand, json: bool) -> Result<()> {
    match command {
        ObjectCommand::Put { file } => {
            let size = std::fs::metadata(&file)
                .with_context(|| format!("reading {}", file.display()))?
                .len();
            let r = client.put_file(&file).await?;
            if json {
                print_json(&json!({ "object_id": r, "size": size }))
            } else {
                println!("{r}");
                Ok(())
            }
        }
        ObjectCommand::Get {
            id,
            output,
            timeout: secs,
        } => {
            let r = parse_object_id(&id)?;
            let wait = timeout(secs)?;
            match output {
                Some(path) => {
                    let size = client.get_to_file(&r, wait, &path).await?;
                    if json {
                        print_json(&json!({ "object_id": r, "size": size, "path": path }))?;
                    }
                    Ok(())
                }
                None if json => print_value(
                    true,
                    json!({ "object_id": r }),
                    &client.get(&r, wait).await?,
                ),
                None => {
                    let mut out = tokio::io::stdout();
                    client.get_to_writer(&r, wait, &mut out).await?;
                    Ok(())
                }
            }
        }
        ObjectCommand::Info { id } => {
            let info = client.object_info(&parse_object_id(&id)?).await?;
            if json {
                print_json(&info)
            } else {
                print_object_info(&info)
            }
        }
        ObjectCommand::Free { ids } => {
            let refs = ids
                .iter()
                .map(|id| parse_object_id(id))
                .collect::<Result<Vec<_>>>()?;
            client.free(&refs).await?;
            if json {
                print_json(&serde_json::json!({ "freed": ids }))
            } else {
                Ok(())
            }
        }
    }
}

fn print_object_info(i: &ObjectInfo) -> Result<()> {
    let state = serde_json::to_value(i.state)?
        .as_str()
        .unwrap_or("unknown")
        .to_string();
    println!("object    {}", i.object_id);
    println!("state     {state}");
    println!("size      {} ({} bytes)", format_size(i.size), i.size);
    println!("crc32     {:08x}", i.crc32);
    match i.producing_task_id {
        Some(t) => println!("task      {t}"),
        None => println!("task      - (put object)"),
    }
    if i.locations.is_empty() {
        println!("locations -");
    }
    for l in &i.locations {
        println!("location  {} at {}", l.worker_id, l.address);
    }
    if !i.error.is_empty() {
        println!("error     {}", i.error);
    }
    Ok(())
}

async fn actor(client: Client, command: ActorCommand, json: bool) -> Result<()> {
    match command {
        ActorCommand::Create {
            class,
            name,
            max_restarts,
            args,
        } => {
            let options = ActorOptions {
                name: name.clone(),
                max_restarts,
                ..Default::default()
            };
            let handle = if class == "inference" {
                super::inference::create(&client, &args, options).await?
            } else {
                client
                    .create_actor(&class, parse_task_args(&args)?, options)
                    .await?
            };
            if json {
                print_json(
                    &json!({ "actor_id": handle.id().hex(), "name": handle.name(), "class": class }),
                )
            } else {
                println!("{}", handle.id());
                Ok(())
            }
        }
        ActorCommand::Call { name, method, args } => {
            let handle = client.get_actor(&name).await?;
            let args = args.into_iter().map(bytes::Bytes::from).collect();
            let v = handle.call(&method, args).await?;
            print_value(json, json!({ "actor_id": handle.id().hex() }), &v)
        }
        ActorCommand::List => {
            let actors = client.list_actors().await?;
            if json {
                return print_json(&json!({ "actors": actors }));
            }
            let rows: Vec<Vec<String>> = actors
                .iter()
                .map(|a| {
                    let state = serde_json::to_value(a.state)
                        .ok()
                        .and_then(|v| v.as_str().map(String::from))
                        .unwrap_or_default();
                    let dash = |s: &str| {
                        if s.is_empty() {
                            "-".to_string()
                        } else {
                            s.to_string()
                        }
                    };
                    vec![
                        dash(&a.name),
                        a.actor_id.hex(),
                        a.class.clone(),
                        state,
                        dash(&a.worker_id),
                        dash(&a.address),
                        a.restarts.to_string(),
                    ]
                })
                .collect();
            print!(
                "{}",
                table(
                    &[
                        "NAME", "ID", "CLASS", "STATE", "WORKER", "ADDRESS", "RESTARTS"
                    ],
                    &rows
                )
            );
            Ok(())
        }
        ActorCommand::Kill { name } => {
            let id = client.kill_actor(&name).await?;
            if json {
                print_json(&json!({ "actor_id": id.hex() }))
            } else {
                println!("{id}");
                Ok(())
            }
        }
    }
}
