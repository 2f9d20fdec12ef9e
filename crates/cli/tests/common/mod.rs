//! What the tests that run the real binary share.

use rand::Rng;

/// A fresh schema in the PostgreSQL of TIDINGS_TEST_DATABASE_URL; its URL selects it through
/// `search_path`.
pub async fn pg_url() -> String {
    use sqlx::Connection;
    let base = std::env::var("TIDINGS_TEST_DATABASE_URL").expect("TIDINGS_TEST_DATABASE_URL");
    let mut conn = sqlx::PgConnection::connect(&base).await.unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let schema = format!("it_{now}_p{}", rand::rng().random_range(0..u32::MAX));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-c%20search_path%3D{schema}")
}
