//! Regions and users through the command line, and their storage on both backends.

use homevisit_server::store::people::{self, Role, find_user, import_regions, parse_regions};
use homevisit_server::store::{DatabaseUrl, open};
use std::path::Path;
use std::process::{Command, Output};

const REGIONS: &str = "code,name,parent
220303,铁东区,
220303100,山门镇,220303
220303100200,\"山门村, 一组\",220303100
";

fn homevisit(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_homevisit"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .expect("run homevisit")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn an_admin_imports_regions_then_adds_disables_and_resets_a_director() {
    let dir = tempfile::tempdir().expect("dir");
    let csv = dir.path().join("regions.csv");
    std::fs::write(&csv, REGIONS).expect("write");
    let out = homevisit(
        dir.path(),
        &["region", "import", csv.to_str().expect("path")],
    );
    assert!(out.status.success(), "{}", text(&out));

    let out = homevisit(
        dir.path(),
        &[
            "user",
            "add",
            "zhang.san",
            "--role",
            "director",
            "--region",
            "220303100200",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let printed = text(&out);
    let password = printed
        .lines()
        .find_map(|l| l.strip_prefix("password (shown once): "))
        .expect("a generated password")
        .to_owned();

    let url = DatabaseUrl::parse(&format!(
        "sqlite://{}",
        dir.path().join("homevisit.sqlite").display()
    ))
    .expect("url");
    let pool = open(&url, 1).expect("open");
    let user = find_user(&mut pool.get().expect("conn"), "zhang.san")
        .expect("query")
        .expect("user");
    assert_eq!(user.role, Role::Director);
    assert_eq!(user.regions, vec!["220303100200".to_string()]);
    assert!(user.password_matches(&password));
    assert!(!user.password_matches("wrong password"));
    drop(pool);

    let again = homevisit(
        dir.path(),
        &[
            "user",
            "add",
            "zhang.san",
            "--role",
            "director",
            "--region",
            "220303100200",
        ],
    );
    assert!(
        !again.status.success() && text(&again).contains("exists"),
        "{}",
        text(&again)
    );
    let nowhere = homevisit(
        dir.path(),
        &[
            "user",
            "add",
            "li.si",
            "--role",
            "supervisor",
            "--region",
            "999999",
        ],
    );
    assert!(
        !nowhere.status.success() && text(&nowhere).contains("no region 999999"),
        "{}",
        text(&nowhere)
    );

    assert!(
        homevisit(dir.path(), &["user", "disable", "zhang.san"])
            .status
            .success()
    );
    let pool = open(&url, 1).expect("open");
    assert!(
        find_user(&mut pool.get().expect("conn"), "zhang.san")
            .expect("query")
            .expect("user")
            .disabled
    );
    drop(pool);
    let reset = homevisit(dir.path(), &["user", "reset-password", "zhang.san"]);
    assert!(reset.status.success(), "{}", text(&reset));
    assert!(
        !text(&reset).contains(&password),
        "the old password was printed"
    );
    let missing = homevisit(dir.path(), &["user", "disable", "nobody"]);
    assert!(!missing.status.success() && text(&missing).contains("no user `nobody`"));
}

#[test]
fn a_malformed_region_file_is_refused_with_its_line() {
    let err = parse_regions("code,name,parent\n21x302,铁东区,\n").expect_err("refused");
    assert!(err.to_string().contains("line 2"), "{err}");
    let err = parse_regions("220303100,街道,110000\n").expect_err("refused");
    assert!(err.to_string().contains("parent"), "{err}");
}

#[test]
fn users_and_regions_are_stored_on_postgres_too() {
    let db = crate::pg::TestDatabase::create();
    let pool = open(&DatabaseUrl::parse(&db.url).expect("url"), 2).expect("open");
    let mut conn = pool.get().expect("conn");
    import_regions(&mut conn, parse_regions(REGIONS).expect("parse")).expect("import");
    let codes = vec!["220303100".to_string()];
    people::add_user(
        &mut conn,
        "wang.wu",
        "王五",
        Role::Supervisor,
        &codes,
        "correct horse battery",
        0,
    )
    .expect("add");
    let user = find_user(&mut conn, "wang.wu")
        .expect("query")
        .expect("user");
    assert_eq!((user.role, user.regions.clone()), (Role::Supervisor, codes));
    assert!(user.password_matches("correct horse battery"));
}
