//! What the PostgreSQL and MySQL/MariaDB test files share, generated for each by
//! `sql_server_tests!`: a `Server` (one pool for the stores of a test, and the schemas —
//! databases on MySQL — they were given, dropped at the end) and the tests both backends
//! run the same way. The arguments are where the two differ: the store and pool types, the
//! helpers that create and drop a schema (`common`'s), how the version table in it is named,
//! the placeholders of a raw insert, how to refresh the planner's statistics and the word a sort step shows
//! in a plan, and an address where nothing listens.

macro_rules! sql_server_tests {
    (
        var: $var:literal,
        store: $Store:ty,
        pool: $Pool:ty,
        pool_options: $PoolOptions:ty,
        create_schema: $create:path,
        drop_schema: $drop:path,
        version_table: $version_table:literal,
        raw_insert: $insert:literal,
        analyze: $analyze:literal,
        sort_step: $sort:literal,
        unreachable: $unreachable:literal $(,)?
    ) => {
        /// A pool shared by the stores of one test, and the schemas they were given.
        struct Server {
            pool: $Pool,
            schemas: std::sync::Mutex<Vec<String>>,
        }

        impl Server {
            async fn connect() -> Option<Server> {
                let url = common::server_url($var)?;
                let pool = <$PoolOptions>::new()
                    .max_connections(12)
                    .connect(&url)
                    .await
                    .expect("connect to the test server");
                Some(Server {
                    pool,
                    schemas: std::sync::Mutex::new(Vec::new()),
                })
            }

            /// A new, empty schema.
            async fn schema(&self) -> String {
                let schema = common::unique("sched_test_");
                $create(&self.pool, &schema).await;
                self.schemas.lock().unwrap().push(schema.clone());
                schema
            }

            async fn store_with(&self, options: StoreOptions) -> $Store {
                let options = options.schema(self.schema().await);
                <$Store>::from_pool(self.pool.clone(), options)
                    .await
                    .expect("store")
            }

            async fn store(&self) -> $Store {
                self.store_with(StoreOptions::new().shared_codec(common::codec_and_trigger().0))
                    .await
            }

            async fn drop_schemas(self) {
                let schemas = std::mem::take(&mut *self.schemas.lock().unwrap());
                for schema in schemas {
                    $drop(&self.pool, &schema).await;
                }
            }
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn store_passes_the_suite() {
            let Some(server) = Server::connect().await else {
                return;
            };
            sched_stores::conformance::run(|| server.store(), common::codec_and_trigger().1).await;
            server.drop_schemas().await;
        }

        #[tokio::test]
        async fn undecodable_rows_are_quarantined_never_lost() {
            let Some(server) = Server::connect().await else {
                return;
            };
            let store = server.store().await;
            let insert = format!($insert, table = store.jobs_table());
            sched_stores::conformance::run_undecodable(
                &store,
                |id, next, text| {
                    let (insert, pool) = (insert.clone(), store.pool().clone());
                    async move {
                        sqlx::query(sqlx::AssertSqlSafe(insert))
                            .bind(id)
                            .bind(next.map(|t| t.timestamp_micros()))
                            .bind(text)
                            .execute(&pool)
                            .await
                            .expect("raw insert");
                    }
                },
                common::codec_and_trigger().1,
            )
            .await;
            server.drop_schemas().await;
        }

        #[tokio::test]
        async fn default_codec_refuses_jobs_it_cannot_persist_naming_them() {
            let Some(server) = Server::connect().await else {
                return;
            };
            let store = server.store_with(StoreOptions::new()).await;
            let mut closure = common::job("closure-job", None, common::never_trigger);
            closure.task = TaskRef::Local(LocalTask::new("tick", ()));
            let err = store.add_job(closure).await.expect_err("closure");
            assert_eq!(err.kind(), StoreErrorKind::Serialization);
            assert!(err.to_string().contains("job closure-job"), "{err}");
            assert!(store.all_jobs().await.expect("all").is_empty());
            server.drop_schemas().await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn connectors_at_once_migrate_once() {
            let Some(server) = Server::connect().await else {
                return;
            };
            let schema = server.schema().await;
            let opens: Vec<_> = (0..6)
                .map(|_| {
                    let pool = server.pool.clone();
                    let options = StoreOptions::new().schema(schema.clone());
                    tokio::spawn(async move { <$Store>::from_pool(pool, options).await })
                })
                .collect();
            for open in opens {
                let store = open.await.expect("join").expect("connect");
                assert_eq!(store.schema_version().await.expect("version"), 3);
            }
            let rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT COUNT(*) FROM {}",
                format!($version_table, schema = schema)
            )))
            .fetch_one(&server.pool)
            .await
            .expect("count");
            assert_eq!(rows, 3, "migrations 1, 2 and 3 recorded once each");
            server.drop_schemas().await;
        }

        #[tokio::test]
        async fn prefixes_keep_stores_apart_in_one_schema() {
            let Some(server) = Server::connect().await else {
                return;
            };
            let schema = server.schema().await;
            let options = StoreOptions::new()
                .shared_codec(common::codec_and_trigger().0)
                .schema(schema);
            let a = <$Store>::from_pool(server.pool.clone(), options.clone().prefix("a_"))
                .await
                .expect("a");
            let b = <$Store>::from_pool(server.pool.clone(), options.prefix("b_"))
                .await
                .expect("b");
            let trigger = common::codec_and_trigger().1;
            a.add_job(common::job("same", None, trigger))
                .await
                .expect("add a");
            b.add_job(common::job("same", None, trigger))
                .await
                .expect("add b");
            a.remove_job(&JobId::new("same").unwrap())
                .await
                .expect("remove a");
            assert_eq!(b.all_jobs().await.expect("b").len(), 1);
            server.drop_schemas().await;
        }

        #[tokio::test]
        async fn due_jobs_query_uses_the_index() {
            let Some(server) = Server::connect().await else {
                return;
            };
            let store = server.store().await;
            let trigger = common::codec_and_trigger().1;
            let base = chrono::Utc::now();
            let jobs = (0..5_000)
                .map(|i| {
                    common::job(
                        &format!("j{i:05}"),
                        Some(base + chrono::Duration::seconds(i)),
                        trigger,
                    )
                })
                .collect();
            store.add_jobs(jobs).await.expect("add");
            sqlx::query(sqlx::AssertSqlSafe(format!(
                $analyze,
                table = store.jobs_table()
            )))
            .execute(store.pool())
            .await
            .expect("analyze");
            let plan = store.due_jobs_plan().await.expect("plan");
            assert!(plan.contains("sched_jobs_next_run_time"), "{plan}");
            assert!(!plan.contains($sort), "no sort step: {plan}");
            server.drop_schemas().await;
        }

        #[tokio::test]
        async fn an_unreachable_server_is_unavailable_with_its_cause() {
            // Needs no server: nothing listens on port 1.
            let err = <$Store>::connect($unreachable)
                .await
                .expect_err("nothing listens on port 1");
            assert_eq!(err.kind(), StoreErrorKind::Unavailable, "{err}");
            assert!(err.is_transient());
            assert!(err.to_string().contains("Connection refused"), "{err}");
        }
    };
}
