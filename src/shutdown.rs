//! The real shutdown trigger: a future that completes on SIGINT or SIGTERM.
//!
//! `main` passes [`signal()`] to `App::run_until_stopped`, which owns the rest of shutdown
//! (cancellation, draining, the deadline); tests pass a future of their own instead. This
//! module only waits for the signal and says which one arrived.

/// Completes when the process receives SIGINT (Ctrl-C) or SIGTERM (service managers, `kill`),
/// logging which one at INFO.
///
/// Should installing a handler fail (it does not in practice), the error is logged and the
/// future waits on the other signal, or forever: that signal then keeps its default action,
/// which still ends the process.
#[cfg(unix)]
pub async fn signal() {
    use tokio::signal::unix::{SignalKind, signal};

    let mut interrupt = listen(signal(SignalKind::interrupt()), "SIGINT");
    let mut terminate = listen(signal(SignalKind::terminate()), "SIGTERM");
    let name = tokio::select! {
        () = recv(interrupt.as_mut()) => "SIGINT",
        () = recv(terminate.as_mut()) => "SIGTERM",
    };
    tracing::info!(signal = name, "Received {name}, shutting down.");
}

/// Completes on Ctrl-C where Unix signals do not exist.
#[cfg(not(unix))]
pub async fn signal() {
    if let Err(err) = tokio::signal::ctrl_c().await {
        tracing::error!(error = %err, "Cannot listen for Ctrl-C; stop the process another way.");
        std::future::pending::<()>().await;
    }
    tracing::info!(signal = "ctrl-c", "Received Ctrl-C, shutting down.");
}

/// The signal stream, or `None` (logged) when the handler could not be installed.
#[cfg(unix)]
fn listen(
    installed: std::io::Result<tokio::signal::unix::Signal>,
    name: &str,
) -> Option<tokio::signal::unix::Signal> {
    installed
        .inspect_err(|err| {
            tracing::error!(signal = name, error = %err, "Cannot listen for {name}.");
        })
        .ok()
}

/// Waits for the next delivery of `signal`; never completes without one.
#[cfg(unix)]
async fn recv(signal: Option<&mut tokio::signal::unix::Signal>) {
    match signal {
        Some(signal) => {
            // `None` means the stream ended, which tokio documents cannot happen.
            signal.recv().await;
        }
        None => std::future::pending().await,
    }
}
