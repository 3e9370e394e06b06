use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

fn load(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml(text, "isdown.toml", &no_env)
}

fn invalid(text: &str) -> (usize, String, String) {
    match load(text) {
        Err(ConfigError::Invalid {
            file,
            line,
            field,
            message,
            ..
        }) => {
            assert_eq!(file, "isdown.toml");
            (line, field, message)
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn empty_file_gives_the_whole_catalog_in_catalog_order() {
    let config = load("").unwrap();
    assert_eq!(
        config.provider_ids(),
        [
            "kimi",
            "kimi-cn",
            "deepseek",
            "glm",
            "zai",
            "qwen",
            "qwen-cn",
            "openai",
            "anthropic",
            "openrouter"
        ]
    );
    let kimi = config.provider("kimi").unwrap();
    assert_eq!(kimi.base_url.as_str(), "https://api.moonshot.ai/v1");
    assert_eq!(kimi.api_key_env.as_deref(), Some("MOONSHOT_API_KEY"));
    assert!(kimi.context_window.is_some());
    let anthropic = config.provider("anthropic").unwrap();
    assert_eq!(anthropic.style, crate::provider::WireStyle::Anthropic);
    assert!(config.providers.iter().all(|p| p.builtin));
}

#[test]
fn override_changes_only_the_fields_it_sets() {
    let config = load("[providers.kimi]\nprobe_model = \"kimi-k3\"\n").unwrap();
    let kimi = config.provider("kimi").unwrap();
    assert_eq!(kimi.probe_model, "kimi-k3");
    assert_eq!(kimi.base_url.as_str(), "https://api.moonshot.ai/v1");
}

#[test]
fn new_openai_compatible_endpoint_is_added_after_the_catalog() {
    let config = load(
        "[providers.vllm]\nbase_url = \"http://127.0.0.1:8000/v1/\"\nprobe_model = \"qwen3\"\n\
         api_key_env = \"VLLM_KEY\"\ndegraded_after = \"2s\"\n",
    )
    .unwrap();
    let vllm = config.providers.last().unwrap();
    assert_eq!(vllm.id, "vllm");
    assert!(!vllm.builtin);
    assert_eq!(vllm.base_url.as_str(), "http://127.0.0.1:8000/v1");
    assert_eq!(vllm.degraded_after, Duration::from_secs(2));
}

#[test]
fn keys_are_resolved_from_the_named_environment_variable() {
    let env = |name: &str| (name == "MOONSHOT_API_KEY").then(|| "sk-abc".to_owned());
    let config = Config::from_toml("", "x", &env).unwrap();
    assert!(config.provider("kimi").unwrap().has_key());
    assert!(!config.provider("deepseek").unwrap().has_key());
}

#[test]
fn unknown_key_names_file_line_and_field() {
    let (line, field, message) =
        invalid("[providers.kimi]\nprobe_model = \"x\"\nbase_ulr = \"y\"\n");
    assert_eq!(line, 3);
    assert_eq!(field, "providers.kimi.base_ulr");
    assert!(message.contains("unknown field"), "{message}");
}

#[test]
fn unknown_top_level_table_is_rejected_with_its_line() {
    let (line, field, _) = invalid("\n\n[chek]\ntimeout = \"5s\"\n");
    assert_eq!(line, 3);
    assert_eq!(field, "chek");
}

#[test]
fn bad_duration_names_the_field() {
    let (line, field, message) = invalid("[check]\ntimeout = \"5 parsecs\"\n");
    assert_eq!((line, field.as_str()), (2, "check.timeout"));
    assert!(message.contains("invalid duration"), "{message}");
}

#[test]
fn bad_style_lists_the_valid_ones() {
    let (_, field, message) = invalid("[providers.x]\nstyle = \"gemini\"\n");
    assert_eq!(field, "providers.x.style");
    assert!(
        message.contains("openai") && message.contains("anthropic"),
        "{message}"
    );
}

#[test]
fn non_http_base_url_is_rejected() {
    let (_, field, _) = invalid("[providers.x]\nbase_url = \"ftp://a/b\"\nprobe_model = \"m\"\n");
    assert_eq!(field, "providers.x.base_url");
}

#[test]
fn new_provider_without_base_url_says_what_is_missing() {
    let (line, _, message) = invalid("\n[providers.mine]\nprobe_model = \"m\"\n");
    assert_eq!(line, 2);
    assert!(message.contains("base_url"), "{message}");
}

#[test]
fn a_key_pasted_into_api_key_env_is_refused_without_being_echoed() {
    let key = "sk-live-0123456789abcdefghij";
    let text = format!("[providers.kimi]\napi_key_env = \"{key}\"\n");
    let err = load(&text).unwrap_err().to_string();
    assert!(!err.contains("0123456789abcdefghij"), "{err}");
    assert!(
        err.contains("api_key_env") && err.contains("looks like a key"),
        "{err}"
    );
}

#[test]
fn a_key_in_a_wrong_typed_value_is_not_echoed() {
    let text = "[providers.kimi]\ncontext_window = \"sk-live-0123456789abcdefghij\"\n";
    let err = load(text).unwrap_err().to_string();
    assert!(!err.contains("0123456789abcdefghij"), "{err}");
}

#[test]
fn credential_headers_are_refused() {
    let (_, _, message) = invalid("[providers.kimi]\nheaders = { Authorization = \"Bearer x\" }\n");
    assert!(message.contains("api_key_env"), "{message}");
}

#[test]
fn witnesses_must_be_known_providers() {
    let (line, field, message) = invalid("[check]\nwitnesses = [\"deepseek\", \"nope\"]\n");
    assert_eq!((line, field.as_str()), (2, "check.witnesses"));
    assert!(message.contains("nope"));
}

#[test]
fn the_init_template_is_a_valid_config() {
    let config = load(TEMPLATE_TOML).unwrap();
    assert_eq!(config.check.timeout, Some(Duration::from_secs(20)));
}

#[test]
fn error_display_reads_file_line_column_field() {
    let err = load("[check]\ntimeout = 5\n").unwrap_err().to_string();
    assert!(err.starts_with("isdown.toml:2:"), "{err}");
    assert!(err.contains("`check.timeout`"), "{err}");
}

#[test]
fn alert_channels_are_checked_at_load_with_line_and_field() {
    let (line, field, message) = invalid("\n[alerts.oncall]\nkind = \"pagerduty\"\n");
    assert_eq!(line, 2);
    assert_eq!(field, "alerts.oncall.routing_key_env");
    assert!(!message.is_empty());
    let (_, field, message) = invalid("[alerts.x]\nkind = \"fax\"\n");
    assert_eq!(field, "alerts.x.kind");
    assert!(message.contains("webhook"), "{message}");
}

#[test]
fn a_valid_alert_channel_is_kept() {
    let config = load("[alerts.log]\nkind = \"console\"\n").unwrap();
    assert_eq!(config.alerts.len(), 1);
    assert_eq!(config.alerts[0].name, "log");
}

#[test]
fn the_templates_gateway_block_is_valid_once_uncommented() {
    let start = TEMPLATE_TOML.find("# [[routes]]").unwrap();
    let end = TEMPLATE_TOML.find("# --- Durable queue").unwrap();
    let block = &TEMPLATE_TOML[start..end];
    let text: String = block
        .lines()
        .filter(|l| l.starts_with("# ") && !l.starts_with("# Clients may"))
        .map(|l| format!("{}\n", &l[2..]))
        .collect();
    let config = load(&text).unwrap();
    let gateway = &config.gateway;
    assert_eq!(gateway.routes.len(), 1);
    assert_eq!(gateway.routes[0].targets.len(), 3);
    assert_eq!(gateway.routes[0].targets[2].params["temperature"], 0.6);
    assert!(gateway.open_on_localhost);
    assert_eq!(gateway.timeouts.first_token, Duration::from_secs(15));
}

#[test]
fn the_templates_queue_block_is_valid_once_uncommented() {
    let block = &TEMPLATE_TOML[TEMPLATE_TOML.find("# [queue]").unwrap()..];
    let text: String = block
        .lines()
        .filter(|l| l.starts_with("# "))
        .map(|l| format!("{}\n", &l[2..]))
        .collect();
    let queue = load(&text).unwrap().queue;
    assert_eq!(queue.defaults.concurrency, 16);
    assert_eq!(queue.defaults.requests_per_minute, Some(600));
    assert_eq!(queue.limits("kimi").concurrency, 4);
    assert_eq!(queue.limits("kimi").requests_per_minute, Some(60));
    assert_eq!(queue.limits("deepseek").concurrency, 16);
}

#[test]
fn queue_settings_follow_the_gateway_and_name_unknown_providers() {
    let config = load("[gateway]\nmax_request_bytes = 1000\nopen_on_localhost = true\n").unwrap();
    assert!(config.queue.open);
    assert_eq!(
        config.queue.max_line_bytes,
        1000 + crate::queue::settings::LINE_ENVELOPE_BYTES
    );
    let (line, _, message) = invalid("[queue]\n[queue.providers.nope]\nconcurrency = 2\n");
    assert_eq!(line, 2);
    assert!(message.contains("nope"), "{message}");
    let (_, field, _) = invalid("[queue]\nconcurrency_per_provider = 0\n");
    assert_eq!(field, "queue.concurrency_per_provider");
}

#[test]
fn gateway_config_errors_name_the_line_and_field() {
    let (line, field, message) =
        invalid("[[routes]]\nmodel = \"x\"\ntargets = [{ provider = \"nope\" }]\n");
    assert_eq!((line, field.as_str()), (1, "routes"));
    assert!(message.contains("nope"), "{message}");
    let (_, _, message) = invalid("[[routes]]\nmodel = \"x\"\ntargets = []\n");
    assert!(message.contains("no targets"), "{message}");
    let (_, _, message) = invalid(
        "[[routes]]\nmodel = \"x\"\ntargets = [{ provider = \"kimi\", params = { model = \"y\" } }]\n",
    );
    assert!(message.contains("model"), "{message}");
    let (line, field, _) = invalid("[gateway]\nidle = \"5s\"\n");
    assert_eq!((line, field.as_str()), (2, "gateway.idle"));
    let (line, field, _) = invalid("\n[gateway.timeouts]\nidle = \"soon\"\n");
    assert_eq!((line, field.as_str()), (3, "gateway.timeouts.idle"));
    let (line, field, _) =
        invalid("[serve]\nlisten = \"0.0.0.0:8080\"\n[gateway]\nopen_on_localhost = true\n");
    assert_eq!((line, field.as_str()), (4, "gateway.open_on_localhost"));
    let (line, field, message) = invalid("[gateway]\nstream_recovery = \"maybe\"\n");
    assert_eq!((line, field.as_str()), (2, "gateway.stream_recovery"));
    assert!(message.contains("\"verified\""), "{message}");
    let (line, field, message) =
        invalid("[gateway]\nmax_request_bytes = 2000\nmax_request_bytes_in_flight = 1000\n");
    assert_eq!(
        (line, field.as_str()),
        (3, "gateway.max_request_bytes_in_flight")
    );
    assert!(message.contains("never be read"), "{message}");
    let (_, _, message) = invalid(
        "[[routes]]\nmodel = \"x\"\ntargets = [{ provider = \"kimi\" }]\nstream_recovery = \"on\"\n",
    );
    assert!(message.contains("stream_recovery"), "{message}");
}

#[test]
fn alert_routing_keys_are_parsed_and_kept_out_of_the_channel() {
    let config =
        load("[alerts.log]\nkind = \"console\"\non = [\"setup_problem\"]\nmonitors = [\"kimi\"]\n")
            .unwrap();
    let spec = &config.alerts[0];
    assert_eq!(spec.receiver.kind(), "console");
    assert_eq!(
        spec.route.kinds,
        vec![crate::incident::IncidentKind::SetupProblem]
    );
    assert!(spec.route.monitors.contains("kimi-chat", "kimi"));
}

#[test]
fn bad_alert_routing_names_its_line_and_key() {
    let (line, field, message) =
        invalid("[web]\n\n[alerts.log]\nkind = \"console\"\non = [\"outages\"]\n");
    assert_eq!(line, 3);
    assert_eq!(field, "alerts.log.on");
    assert!(message.contains("setup_problem"), "{message}");
}

#[test]
fn alerting_rules_load_with_defaults_and_reject_bad_values_with_their_line() {
    let defaults = load("").unwrap().alerting;
    assert_eq!(
        defaults.reminder,
        Some(std::time::Duration::from_secs(1800))
    );
    assert_eq!(defaults.group_window, std::time::Duration::from_secs(20));

    let config = load(
        "[alerting]\nreminder = \"off\"\ngroup_window = \"5s\"\n\
         [[alerting.maintenance]]\nmonitors = [\"kimi-*\"]\n\
         start = \"2026-12-01T02:00:00Z\"\nend = \"2026-12-01T04:00:00Z\"\n",
    )
    .unwrap();
    assert_eq!(config.alerting.reminder, None);
    assert_eq!(config.alerting.maintenance.len(), 1);

    let (line, field, message) = invalid("[alerting]\nreminder = \"1m\"\n");
    assert_eq!((line, field.as_str()), (2, "alerting.reminder"));
    assert!(message.contains("5m"), "{message}");

    let (line, _, message) = invalid(
        "[alerting]\n[[alerting.maintenance]]\nmonitors = [\"kimi\"]\n\
         start = \"2026-12-01T04:00:00Z\"\nend = \"2026-12-01T02:00:00Z\"\n",
    );
    assert_eq!(line, 2);
    assert!(message.contains("after"), "{message}");
    let (_, field, _) = invalid("[alerting]\nreminders = \"30m\"\n");
    assert_eq!(field, "alerting.reminders");
}

// === corroboration ===

#[test]
fn the_catalog_points_at_the_real_status_endpoints_of_the_reference() {
    let config = load("").unwrap();
    let c = &config.corroboration;
    assert!(c.enabled);
    assert_eq!(c.interval, Duration::from_secs(120));
    assert_eq!(c.aggregator_url.as_str(), "https://openrouter.ai/api/v1");
    let root = |id: &str| {
        c.of(id)
            .and_then(|s| s.official.as_ref())
            .map(|o| o.root.as_str().trim_end_matches('/').to_owned())
    };
    assert_eq!(root("kimi").as_deref(), Some("https://status.moonshot.cn"));
    assert_eq!(
        root("kimi-cn").as_deref(),
        Some("https://status.moonshot.cn")
    );
    // DeepSeek's JSON only on its Atlassian mirror; OpenAI's incident.io page is compatible.
    assert_eq!(
        root("deepseek").as_deref(),
        Some("https://deepseek.statuspage.io")
    );
    assert_eq!(root("openai").as_deref(), Some("https://status.openai.com"));
    assert_eq!(
        root("anthropic").as_deref(),
        Some("https://status.claude.com")
    );
    // No machine-readable page: GLM, Qwen, and OpenRouter (Datadog since 2026-09).
    for none in ["glm", "zai", "qwen", "qwen-cn", "openrouter"] {
        assert_eq!(root(none), None, "{none}");
    }
    let kimi = c.of("kimi").unwrap();
    let official = kimi.official.as_ref().unwrap();
    assert_eq!(official.components, ["Open API", "API Service", "K2 Model"]);
    assert_eq!(
        official.summary_url().as_str(),
        "https://status.moonshot.cn/api/v2/summary.json"
    );
    assert_eq!(
        official.incidents_url().as_str(),
        "https://status.moonshot.cn/api/v2/incidents.json"
    );
    let aggregator = kimi.aggregator.as_ref().unwrap();
    assert_eq!(
        aggregator.url(&c.aggregator_url).as_str(),
        "https://openrouter.ai/api/v1/models/moonshotai/kimi-k2.6/endpoints"
    );
    assert_eq!(aggregator.endpoint.as_deref(), Some("Moonshot AI"));
    // OpenRouter as a provider: every upstream of its probe model.
    let openrouter = c.of("openrouter").unwrap().aggregator.as_ref().unwrap();
    assert_eq!(openrouter.endpoint, None);
    assert!(kimi.community.is_empty());
}

#[test]
fn pointing_a_catalog_provider_elsewhere_drops_its_official_sources_unless_set_again() {
    let config =
        load("[providers.kimi]\nbase_url = \"http://127.0.0.1:9/v1\"\n[providers.openai]\nprobe_model = \"gpt-5\"\n")
            .unwrap();
    assert!(config.corroboration.of("kimi").is_none());
    // Another field changed, the endpoint kept: the sources stay.
    assert!(
        config
            .corroboration
            .of("openai")
            .unwrap()
            .official
            .is_some()
    );
    let config = load(
        "[providers.kimi]\nbase_url = \"http://127.0.0.1:9/v1\"\n\
         status_url = \"http://127.0.0.1:8/status/\"\nstatus_components = [\"Open API\"]\n",
    )
    .unwrap();
    let official = config
        .corroboration
        .of("kimi")
        .unwrap()
        .official
        .clone()
        .unwrap();
    assert_eq!(
        official.summary_url().as_str(),
        "http://127.0.0.1:8/status/api/v2/summary.json"
    );
    assert!(
        config
            .corroboration
            .of("kimi")
            .unwrap()
            .aggregator
            .is_none()
    );
}

#[test]
fn corroboration_settings_and_community_feeds_load_with_defaults() {
    let config = load(
        "[corroboration]\ninterval = \"1s\"\ntimeout = \"3s\"\n\
         aggregator_url = \"http://127.0.0.1:7/api/v1\"\n\
         [[corroboration.community]]\nprovider = \"kimi\"\n\
         url = \"https://www.reddit.com/r/LocalLLaMA/search.rss?q=kimi+down&sort=new\"\n\
         keywords = [\"Kimi down\", \" moonshot \"]\n\
         [[corroboration.community]]\nprovider = \"deepseek\"\nname = \"HN\"\n\
         url = \"http://127.0.0.1:7/feed/\"\nkeywords = [\"deepseek\"]\nwindow = \"10m\"\n\
         baseline = \"1d\"\nmin_reports = 5\n",
    )
    .unwrap();
    let c = &config.corroboration;
    assert_eq!(c.interval, Duration::from_secs(1));
    assert_eq!(c.timeout, Duration::from_secs(3));
    assert_eq!(c.aggregator_url.as_str(), "http://127.0.0.1:7/api/v1");
    let kimi = &c.of("kimi").unwrap().community[0];
    assert_eq!(kimi.name, "www.reddit.com");
    assert_eq!(kimi.keywords, ["kimi down", "moonshot"]);
    assert_eq!(kimi.window, Duration::from_secs(1_800));
    assert_eq!(kimi.baseline, Duration::from_secs(7 * 86_400));
    assert_eq!(kimi.min_reports, 3);
    let hn = &c.of("deepseek").unwrap().community[0];
    assert_eq!(hn.name, "HN");
    // A feed URL is kept exactly as written.
    assert_eq!(hn.url.as_str(), "http://127.0.0.1:7/feed/");
    assert_eq!((hn.window, hn.min_reports), (Duration::from_secs(600), 5));

    let off = load("[corroboration]\nenabled = false\n").unwrap();
    assert!(off.corroboration.of("kimi").is_none());
}

#[test]
fn bad_corroboration_settings_name_their_line_and_field() {
    let (line, field, message) = invalid("[corroboration]\ninterval = \"500ms\"\n");
    assert_eq!((line, field.as_str()), (2, "corroboration.interval"));
    assert!(message.contains("at least 1s"), "{message}");

    let feed = |body: &str| {
        invalid(&format!(
            "[[corroboration.community]]\nurl = \"https://example.com/feed\"\n{body}"
        ))
    };
    let (line, field, message) = feed("provider = \"nope\"\nkeywords = [\"x\"]\n");
    assert_eq!(line, 1);
    assert_eq!(field, "corroboration.community.provider");
    assert!(message.contains("unknown provider \"nope\""), "{message}");
    let (_, field, _) = feed("provider = \"kimi\"\nkeywords = [\" \"]\n");
    assert_eq!(field, "corroboration.community.keywords");
    let (_, field, message) =
        feed("provider = \"kimi\"\nkeywords = [\"x\"]\nwindow = \"2h\"\nbaseline = \"1h\"\n");
    assert_eq!(field, "corroboration.community.baseline");
    assert!(message.contains("at least as long"), "{message}");
    let (line, _, message) = invalid(
        "[[corroboration.community]]\nprovider = \"kimi\"\nkeywords = [\"x\"]\nurl = \"ftp://x\"\n",
    );
    assert_eq!(line, 4);
    assert!(message.contains("http"), "{message}");

    let (_, _, message) = invalid("[providers.glm]\nstatus_components = [\"API\"]\n");
    assert!(message.contains("set status_url too"), "{message}");
    let (_, _, message) = invalid("[providers.glm]\naggregator_provider = \"Z.AI\"\n");
    assert!(message.contains("set aggregator_model too"), "{message}");
    let (_, _, message) = invalid("[providers.glm]\nstatus_url = \"status.example.com\"\n");
    assert!(message.contains("not a URL"), "{message}");
}

#[test]
fn a_configured_key_pasted_into_the_file_is_not_repeated_by_the_error() {
    // Found by the `config` fuzz target: the field of an error is read off the file's line (a
    // table header, a key name) and was shown unscrubbed, so on an admin reload — when every
    // configured key is registered — a key pasted into the file came back in the error.
    let key = "cfgLeakTestKeyValue0042";
    crate::secret::register([key]);
    for text in [
        format!("[providers.{key}\n"),
        format!("[alerts.x]\ntype = \"webhook\"\n[alerts.{key}.y]\n"),
        format!("[providers.kimi]\n{key} = true\n"),
    ] {
        let error = load(&text).unwrap_err().to_string();
        assert!(!error.contains(key), "{error}");
        assert!(error.starts_with("isdown.toml:"), "{error}");
    }
}

// === [store] and ISDOWN_DATABASE_URL ===

fn store_url(config: &Config) -> String {
    config
        .store
        .url_in(std::path::Path::new("data-dir"))
        .to_string()
}

#[test]
fn without_a_url_the_store_is_the_sqlite_file_in_the_data_directory() {
    let config = load("").unwrap();
    assert!(config.store.url.is_none());
    assert_eq!(store_url(&config), "sqlite:data-dir/isdown.db");
    assert_eq!(config.store.pool, PoolSettings::default());
}

#[test]
fn the_file_selects_the_store_and_sizes_the_pool() {
    let config = load(
        "[store]\nurl = \"postgres://isdown:file-pass-Aq1@db.internal/isdown\"\n\
         pool_size = 4\nacquire_timeout = \"5s\"\n",
    )
    .unwrap();
    assert_eq!(
        store_url(&config),
        "postgres://isdown@db.internal:5432/isdown"
    );
    assert_eq!(config.store.pool.size, 4);
    assert_eq!(config.store.pool.acquire_timeout, Duration::from_secs(5));
    assert!(!format!("{config:?}").contains("file-pass-Aq1"));
    let config = load("[store]\nurl = \"sqlite:/var/lib/isdown/history.db\"\n").unwrap();
    assert_eq!(store_url(&config), "sqlite:/var/lib/isdown/history.db");
}

#[test]
fn the_environment_wins_over_the_file() {
    let env = |var: &str| {
        (var == DATABASE_URL_VAR).then(|| "postgres://u:env-pass-Bz2@env-host:6000/envdb".into())
    };
    let text = "[store]\nurl = \"sqlite:from-file.db\"\npool_size = 3\n";
    let config = Config::from_toml(text, "isdown.toml", &env).unwrap();
    assert_eq!(store_url(&config), "postgres://u@env-host:6000/envdb");
    // The rest of [store] still applies.
    assert_eq!(config.store.pool.size, 3);
    // An empty variable counts as unset.
    let empty = |var: &str| (var == DATABASE_URL_VAR).then(String::new);
    let config = Config::from_toml(text, "isdown.toml", &empty).unwrap();
    assert_eq!(store_url(&config), "sqlite:from-file.db");
}

#[test]
fn a_bad_store_url_is_refused_without_repeating_it() {
    let (line, field, message) = invalid("[store]\nurl = \"mysql://root:hunter2-pass@db/x\"\n");
    assert_eq!((line, field.as_str()), (2, "store.url"));
    assert!(message.contains("sqlite:PATH or postgres://"), "{message}");
    assert!(!message.contains("hunter2-pass"), "{message}");

    let env =
        |var: &str| (var == DATABASE_URL_VAR).then(|| "postgres://u:pw-Kx8@h:notaport/d".into());
    match Config::from_toml("", "isdown.toml", &env) {
        Err(error @ ConfigError::Env { .. }) => {
            let message = error.to_string();
            assert!(message.starts_with("ISDOWN_DATABASE_URL: "), "{message}");
            assert!(!message.contains("pw-Kx8"), "{message}");
        }
        other => panic!("expected Env, got {other:?}"),
    }
}
