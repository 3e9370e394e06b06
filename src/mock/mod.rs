//! The mock provider (STUB — being written in another worktree).
use std::str::FromStr;
pub struct MockOptions {
    pub scenario: Scenario,
    pub style: Style,
    pub delay: std::time::Duration,
}
#[derive(Clone, Copy)]
pub enum Scenario {
    Ok,
}
impl Scenario {
    pub const ALL: [Scenario; 1] = [Scenario::Ok];
    pub fn as_str(self) -> &'static str {
        "ok"
    }
}
impl FromStr for Scenario {
    type Err = ();
    fn from_str(_: &str) -> Result<Self, ()> {
        Ok(Scenario::Ok)
    }
}
pub enum Style {
    Openai,
}
impl FromStr for Style {
    type Err = ();
    fn from_str(_: &str) -> Result<Self, ()> {
        Ok(Style::Openai)
    }
}
pub async fn run(
    _l: tokio::net::TcpListener,
    _o: MockOptions,
    s: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    s.await;
    Ok(())
}
