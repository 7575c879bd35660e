//! PLACEHOLDER facade.
pub use sched_core;

pub mod stores {
    //! Where a scheduler keeps its jobs: the [`JobStore`] contract, the in-memory default,
    //! and the persistent backends, each behind a feature of its own name (`sqlite`,
    //! `postgres`, `mysql`, `redis`): `sched::stores::sqlite::SqliteStore`,
    //! `sched::stores::postgres::PostgresStore`, `sched::stores::mysql::MySqlStore`,
    //! `sched::stores::redis::RedisStore`.
    //!
    //! ```
    //! use sched::stores::{BoxJobStore, JobStore, MemoryStore};
    //!
    //! let store = BoxJobStore::new(MemoryStore::new());
    //! assert!(!store.is_persistent());
    //! ```

    pub use sched_stores::{
        BoxJobStore, JobCodec, JobStore, MemoryStore, QuarantinedJob, StoreError, StoreErrorKind,
        StoreOptions, StoredJobCodec,
    };

    #[cfg(feature = "sqlite")]
    pub mod sqlite {
        //! Jobs in one SQLite file: see [`SqliteStore`].
        pub use sched_stores::sqlite::SqliteStore;
    }

    #[cfg(feature = "postgres")]
    pub mod postgres {
        //! Jobs in PostgreSQL: see [`PostgresStore`].
        pub use sched_stores::postgres::PostgresStore;
    }

    #[cfg(feature = "mysql")]
    pub mod mysql {
        //! Jobs in MySQL or MariaDB: see [`MySqlStore`].
        pub use sched_stores::mysql::MySqlStore;
    }

    #[cfg(feature = "redis")]
    pub mod redis {
        //! Jobs in Redis: see [`RedisStore`].
        pub use sched_stores::redis::RedisStore;
    }
}
