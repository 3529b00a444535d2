//! The `iocd` command line: parse flags, load and check the settings, start logging, then
//! build the app and run it until SIGINT or SIGTERM.
//!
//! Exit status: 0 after a clean stop; 1 when the daemon fails while starting or running
//! (the error chain goes to stderr); 2 when the configuration or the command line is
//! unusable (the message names the file or flag, the key and what is wrong).

// The numeric casts allowed in Cargo.toml ([workspace.lints], with the reason), repeated
// here so that `cargo clippy -- -W clippy::pedantic` on the command line keeps them allowed.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_precision_loss,
    clippy::cast_sign_loss
)]

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use iocd::config::{BrokerUrl, DEFAULT_CONFIG, ListenAddrError, LogFormat, Settings};

/// Real-time monitoring daemon for a provincial Intelligent Operations Centre.
#[derive(Debug, Parser)]
#[command(name = "iocd", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon until SIGINT or SIGTERM.
    Run(RunArgs),
    /// Load and validate a configuration, print OK and exit (status 2 when it is bad).
    CheckConfig(ConfigArg),
    /// Print the built-in configuration, every key with its default and a comment.
    PrintDefaultConfig,
    /// Declarative mappings of vendor payloads (docs/integrations.md).
    #[command(subcommand)]
    Mapping(MappingCommand),
    /// Everything in one process, nothing to install: an embedded MQTT broker, simulated
    /// source systems and the daemon serving the wall at <http://127.0.0.1:8080>/.
    #[cfg(feature = "demo")]
    Demo(DemoArgs),
    /// Publish realistic events of the three source systems to a broker, with a small
    /// share of faults; `--rate` scales the mix up for load tests.
    #[cfg(feature = "demo")]
    Simulate(SimulateArgs),
}

#[derive(Debug, Subcommand)]
enum MappingCommand {
    /// Print the contract events a payload becomes (one JSON line each, checked as the
    /// daemon checks them), or the exact error: status 2 when it cannot be mapped.
    Check(MappingCheckArgs),
    /// List the mappings a configuration loads from `[mappings] dir`: name, source and
    /// inputs (MQTT topic filters, the HTTP push route, a poller); status 2 when one is bad.
    List(ConfigArg),
}

#[derive(Debug, Args)]
struct MappingCheckArgs {
    /// The mapping file (TOML), such as config/mappings/national-sync.toml.
    #[arg(long, value_name = "FILE")]
    mapping: PathBuf,
    /// A payload as the vendor sends it (JSON: one record or a batch body).
    #[arg(long, value_name = "FILE")]
    payload: PathBuf,
    /// The agency directory that names agencies (default: the shipped example directory).
    #[arg(long, value_name = "FILE")]
    directory: Option<PathBuf>,
    /// IANA time zone of local times without an offset.
    #[arg(long, value_name = "TZ", default_value = "Asia/Ho_Chi_Minh")]
    timezone: String,
}

#[derive(Debug, Args)]
struct ConfigArg {
    /// TOML configuration file; keys left out keep their defaults. Without it, the
    /// built-in defaults (`iocd print-default-config`) are used.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Broker URL, mqtt://host:port or mqtts://host:port; overrides `mqtt.url`.
    #[arg(long, value_name = "URL")]
    mqtt: Option<BrokerUrl>,
    /// HTTP listen address such as 0.0.0.0:8080; overrides `http.listen`.
    #[arg(long, value_name = "ADDR", value_parser = http_addr)]
    listen: Option<SocketAddr>,
    /// Directory for durable state; created if missing.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Log format on stderr; overrides `log.format`.
    #[arg(long, value_enum, value_name = "FORMAT")]
    log_format: Option<LogFormat>,
}

#[cfg(feature = "demo")]
#[derive(Debug, Args)]
struct DemoArgs {
    /// HTTP address of the wall, the WebSocket, the API and /metrics [default: 127.0.0.1:8080,
    /// or a free port when that one is taken].
    #[arg(long, value_name = "ADDR", value_parser = http_addr)]
    listen: Option<SocketAddr>,
    /// Address of the embedded MQTT broker, where test feeds can publish too [default:
    /// 127.0.0.1:1883, or a free port when that one is taken].
    #[arg(long, value_name = "ADDR", value_parser = mqtt_addr)]
    mqtt_listen: Option<SocketAddr>,
    /// Seed of the simulation.
    #[arg(long, default_value_t = 2026)]
    seed: u64,
    /// Share (0 to 1) of simulated events sent with a fault (duplicate, out of order or
    /// malformed), to watch how iocd handles bad input; each rejection logs a warning.
    #[arg(long, value_name = "F", default_value_t = 0.0)]
    faults: f64,
}

#[cfg(feature = "demo")]
#[derive(Debug, Args)]
struct SimulateArgs {
    /// Broker URL, mqtt://host:port or mqtts://host:port (no user:password@ in it: use
    /// --username and --password-env).
    #[arg(long, value_name = "URL", default_value = "mqtt://127.0.0.1:1883")]
    mqtt: BrokerUrl,
    /// Topic prefix.
    #[arg(long, default_value = "ioc/v1")]
    prefix: String,
    /// Messages per second (the busy-hour mix, scaled); default: the province's own rate.
    #[arg(long, value_name = "N")]
    rate: Option<f64>,
    /// How long to run, such as 30s, 10m or 1h; default: until Ctrl-C.
    #[arg(long, value_name = "D", value_parser = iocd::simulate::parse_duration)]
    duration: Option<std::time::Duration>,
    /// Seed of the simulation; default: random (printed).
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
    /// Share (0 to 1) of events sent with a fault: duplicate, out of order or malformed.
    #[arg(long, value_name = "F", default_value_t = 0.01)]
    faults: f64,
    /// Login name at the broker.
    #[arg(long, value_name = "NAME")]
    username: Option<String>,
    /// Name of the environment variable that holds the password for --username.
    #[arg(long, value_name = "VAR", default_value = "IOCD_MQTT_PASSWORD")]
    password_env: String,
    /// PEM file of the CA that signed the broker's certificate (with mqtts://).
    #[arg(long, value_name = "FILE")]
    ca_file: Option<String>,
}

/// Why `iocd` stops unsuccessfully; decides the exit status.
enum Failure {
    /// Unusable configuration, flags or data directory: exit status 2.
    Config(anyhow::Error),
    /// The daemon failed to start or while running: exit status 1.
    Runtime(anyhow::Error),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => Box::pin(run(args)).await,
        Command::CheckConfig(arg) => check_config(&arg),
        Command::PrintDefaultConfig => print_default_config(),
        Command::Mapping(MappingCommand::Check(args)) => mapping_check(&args),
        Command::Mapping(MappingCommand::List(arg)) => mapping_list(&arg),
        #[cfg(feature = "demo")]
        Command::Demo(args) => Box::pin(demo(args)).await,
        #[cfg(feature = "demo")]
        Command::Simulate(args) => simulate(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Config(err)) => {
            eprintln!("iocd: {err:#}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(err)) => {
            // Said once: as a JSON line for log collectors, else as a plain sentence.
            if iocd::telemetry::logs_are_json() {
                tracing::error!(error = format!("{err:#}"), "Daemon stopped on an error.");
            } else {
                eprintln!("iocd: {err:#}");
            }
            ExitCode::FAILURE
        }
    }
}

/// `iocd run`: settings → data directory → logging → `App::build` → run until a signal.
async fn run(args: RunArgs) -> Result<(), Failure> {
    let settings = settings_for_run(&args).map_err(Failure::Config)?;
    // The lock is held until `run` returns: one daemon per data directory.
    let (data_dir, _lock) = prepare_data_dir(args.data_dir.as_deref()).map_err(Failure::Config)?;
    iocd::telemetry::init_logging(settings.log.format, &settings.log.level)
        .map_err(|e| Failure::Config(e.into()))?;
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        config = %origin(args.config.config.as_deref()),
        mqtt = %settings.mqtt.url,
        listen = %settings.http.listen,
        state = %data_dir.as_deref().map_or_else(
            || "in memory only (no --data-dir): a restart loses it".to_owned(),
            |d| format!("event log and checkpoints in {}", d.display())
        ),
        huge_pages = %iocd::telemetry::huge_pages::status(),
        "Starting iocd."
    );
    let app = iocd::app::App::build(settings, data_dir)
        .await
        .context("cannot start the daemon")
        .map_err(Failure::Runtime)?;
    // On the heap: the daemon's future holds the whole pipeline (its state included).
    Box::pin(app.run_until_stopped(iocd::shutdown::signal()))
        .await
        .map_err(|e| Failure::Runtime(e.into()))?;
    tracing::info!("Stopped.");
    Ok(())
}

/// The file's settings with the flags applied on top (clap has parsed the flags into
/// their types, naming the flag in any error).
fn settings_for_run(args: &RunArgs) -> anyhow::Result<Settings> {
    let mut settings = load(args.config.config.as_deref())?;
    if let Some(url) = &args.mqtt {
        settings.mqtt.url.clone_from(url);
    }
    if let Some(listen) = args.listen {
        settings.http.listen = listen;
    }
    if let Some(format) = args.log_format {
        settings.log.format = format;
    }
    Ok(settings)
}

/// `--listen`: an IP address and port, with the same message as `http.listen`.
fn http_addr(text: &str) -> Result<SocketAddr, ListenAddrError> {
    iocd::config::listen_addr(text, "127.0.0.1:8080")
}

/// `--mqtt-listen`: an IP address and port, with the same message as `mqtt.embedded_listen`.
#[cfg(feature = "demo")]
fn mqtt_addr(text: &str) -> Result<SocketAddr, ListenAddrError> {
    iocd::config::listen_addr(text, "127.0.0.1:1883")
}

/// Loads and validates the settings, and checks that the broker password can be read
/// (so an unset `mqtt.password_env` variable stops us here, not at the first connect).
fn load(path: Option<&Path>) -> anyhow::Result<Settings> {
    let settings = Settings::load(path)?;
    settings.mqtt_password().context(origin(path))?;
    Ok(settings)
}

/// Creates `--data-dir` if needed and locks it, so a bad path or a second daemon on the same
/// directory is refused before anything starts.
fn prepare_data_dir(
    dir: Option<&Path>,
) -> anyhow::Result<(Option<PathBuf>, Option<iocd::store::DataDirLock>)> {
    let Some(dir) = dir else {
        return Ok((None, None));
    };
    std::fs::create_dir_all(dir)
        .with_context(|| format!("--data-dir {}: cannot create the directory", dir.display()))?;
    let lock = iocd::store::DataDirLock::acquire(dir)?;
    Ok((Some(dir.to_path_buf()), Some(lock)))
}

/// `iocd demo`: embedded broker + simulator + daemon.
#[cfg(feature = "demo")]
async fn demo(args: DemoArgs) -> Result<(), Failure> {
    iocd::telemetry::init_logging(LogFormat::Text, "warn,iocd=info")
        .map_err(|e| Failure::Config(e.into()))?;
    let options = iocd::demo::DemoOptions {
        listen: args.listen,
        mqtt_listen: args.mqtt_listen,
        seed: args.seed,
        faults: args.faults,
    };
    Box::pin(iocd::demo::run(options, iocd::shutdown::signal()))
        .await
        .map_err(|e| Failure::Runtime(e.into()))
}

/// `iocd simulate`: publishes simulated events until `--duration` or a signal.
#[cfg(feature = "demo")]
async fn simulate(args: SimulateArgs) -> Result<(), Failure> {
    let options = iocd::simulate::SimOptions {
        mqtt_url: args.mqtt,
        prefix: args.prefix,
        rate: args.rate,
        duration: args.duration,
        seed: args.seed.unwrap_or_else(rand::random),
        faults: args.faults,
        progress: true,
        password: simulator_password(args.username.as_deref(), &args.password_env)
            .map_err(Failure::Config)?,
        username: args.username,
        ca_file: args.ca_file,
        ..iocd::simulate::SimOptions::default()
    };
    options.validate().map_err(|e| Failure::Config(e.into()))?;
    iocd::telemetry::init_logging(LogFormat::Text, "warn")
        .map_err(|e| Failure::Config(e.into()))?;
    iocd::simulate::run(options)
        .await
        .map(|_| ())
        .map_err(|e| Failure::Runtime(e.into()))
}

/// The password for `iocd simulate --username`, from the variable `var`.
#[cfg(feature = "demo")]
fn simulator_password(
    username: Option<&str>,
    var: &str,
) -> anyhow::Result<Option<iocd::config::Secret>> {
    let Some(user) = username else {
        return Ok(None);
    };
    match std::env::var(var) {
        Ok(password) => Ok(Some(password.into())),
        Err(std::env::VarError::NotPresent) => anyhow::bail!(
            "--username {user}: export the password in {var} (or name another variable with \
             --password-env)"
        ),
        Err(std::env::VarError::NotUnicode(_)) => anyhow::bail!("{var} is not valid Unicode"),
    }
}

/// `iocd check-config`: the same loading and checks as `run`, then `<origin>: OK`.
/// `iocd mapping check`: maps a payload file offline and prints what the daemon would apply.
fn mapping_check(args: &MappingCheckArgs) -> Result<(), Failure> {
    use iocd::decode::mapping::{Context, Mapped, Mapping};
    let read = |p: &PathBuf| {
        std::fs::read(p)
            .with_context(|| format!("cannot read {}", p.display()))
            .map_err(Failure::Config)
    };
    let text = String::from_utf8_lossy(&read(&args.mapping)?).into_owned();
    let mapping = Mapping::parse(&text, &args.mapping.display().to_string())
        .map_err(|e| Failure::Config(anyhow::anyhow!(e)))?;
    let directory = match &args.directory {
        Some(p) => iocd::directory::Directory::read(p)
            .map_err(|e| Failure::Config(anyhow::anyhow!("{e}")))?,
        None => iocd::directory::Directory::parse(
            include_str!("../config/agencies-example.toml"),
            "agencies-example.toml",
        )
        .map_err(|e| Failure::Config(anyhow::anyhow!("{e}")))?,
    };
    let tz = jiff::tz::TimeZone::get(&args.timezone)
        .with_context(|| format!("unknown time zone {}", args.timezone))
        .map_err(Failure::Config)?;
    let payload = read(&args.payload)?;
    let mapped = mapping
        .map_each(
            &payload,
            Context {
                tz: &tz,
                directory: &directory,
            },
        )
        .map_err(|e| {
            Failure::Config(match e {
                iocd::decode::mapping::PayloadError::NotJson(e) => {
                    anyhow::anyhow!("invalid_json: {e}")
                }
                iocd::decode::mapping::PayloadError::Mapping(e) => {
                    anyhow::anyhow!("mapping_failed: {e}")
                }
            })
        })?;
    let limits = iocd::decode::DecodeLimits::default();
    let mut out = std::io::stdout().lock();
    let mut rejected = 0;
    let mut failed = Vec::new();
    // A record's events in order, or its failure.
    let lines = mapped.into_iter().enumerate().flat_map(|(i, r)| {
        let (made, failed) = match r {
            Ok(made) => (made, None),
            Err(e) => (
                iocd::decode::mapping::RecordEvents::new(),
                Some(Err((i, e))),
            ),
        };
        made.into_iter().map(Ok).chain(failed)
    });
    for m in lines {
        let line = match m {
            Err((i, e)) => {
                let line = format!("# record {i}: mapping_failed: {e}");
                failed.push(e);
                line
            }
            Ok(Mapped::Skipped { record, why }) => format!("# record {record}: skipped, {why}"),
            Ok(Mapped::Event {
                json: bytes, spans, ..
            }) => {
                // As the daemon decodes it (`decode_written`).
                match iocd::decode::decode_written(
                    mapping.source,
                    &bytes,
                    &spans,
                    iocd::time::Ts::now(),
                    &limits,
                ) {
                    Ok(_) => String::from_utf8_lossy(&bytes).into_owned(),
                    Err(e) => {
                        rejected += 1;
                        format!(
                            "# rejected ({}): {}",
                            e.reason.as_str(),
                            String::from_utf8_lossy(&bytes)
                        )
                    }
                }
            }
        };
        writeln!(out, "{line}")
            .context("cannot write to stdout")
            .map_err(Failure::Runtime)?;
    }
    if let Some(first) = failed.first() {
        return Err(Failure::Config(anyhow::anyhow!(
            "mapping_failed: {first} ({} record(s) could not be mapped)",
            failed.len()
        )));
    }
    if rejected > 0 {
        return Err(Failure::Config(anyhow::anyhow!(
            "{rejected} mapped event(s) rejected by the contract's validation"
        )));
    }
    Ok(())
}

/// `iocd mapping list`: the mappings a configuration loads, with their inputs.
fn mapping_list(arg: &ConfigArg) -> Result<(), Failure> {
    let settings = load(arg.config.as_deref()).map_err(Failure::Config)?;
    let m = &settings.mappings;
    let mut out = std::io::stdout().lock();
    let mut lines = Vec::new();
    match &m.dir {
        None => lines.push(format!(
            "{}: no mappings ([mappings] dir is empty)",
            origin(arg.config.as_deref())
        )),
        Some(dir) => lines.push(format!(
            "{}: {} mapping(s)",
            dir.display(),
            m.mappings.len()
        )),
    }
    for mapping in m.mappings.all() {
        let mut inputs: Vec<String> = mapping
            .input
            .mqtt
            .iter()
            .map(|f| format!("mqtt {f}"))
            .collect();
        if mapping.input.http {
            inputs.push(format!("http POST /api/v1/ingest/mapped/{}", mapping.name));
        }
        if let Some(poll) = &mapping.input.poll {
            inputs.push(format!("poll {} every {} s", poll.url, poll.every_secs));
        }
        if inputs.is_empty() {
            inputs.push("no input (mapping check only)".into());
        }
        lines.push(format!(
            "{}\t{}\t{}\t{}",
            mapping.name,
            mapping.source.as_str(),
            inputs.join("; "),
            mapping.description
        ));
    }
    for line in lines {
        writeln!(out, "{line}")
            .context("cannot write to stdout")
            .map_err(Failure::Runtime)?;
    }
    Ok(())
}

fn check_config(arg: &ConfigArg) -> Result<(), Failure> {
    load(arg.config.as_deref()).map_err(Failure::Config)?;
    writeln!(std::io::stdout(), "{}: OK", origin(arg.config.as_deref()))
        .context("cannot write to stdout")
        .map_err(Failure::Runtime)
}

/// `iocd print-default-config`: the embedded `config/iocd.toml` on stdout.
fn print_default_config() -> Result<(), Failure> {
    // Not `print!`: it panics when stdout is a closed pipe (`| head`).
    std::io::stdout()
        .lock()
        .write_all(DEFAULT_CONFIG.as_bytes())
        .context("cannot write to stdout")
        .map_err(Failure::Runtime)
}

/// How to name the configuration in messages.
fn origin(path: Option<&Path>) -> String {
    path.map_or_else(
        || "built-in defaults".to_owned(),
        |p| p.display().to_string(),
    )
}
