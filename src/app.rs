pub struct App;
impl App { pub async fn build(_s: crate::config::Settings, _d: Option<std::path::PathBuf>) -> anyhow::Result<App> { todo!() } pub async fn run_until_stopped(self, _sig: impl std::future::Future<Output=()> + Send) -> anyhow::Result<()> { todo!() } }
