//! Random batches against a model: the store holds what a map would, after reopening.

use crate::{fresh, key};
use homevisit_sync_core::store::{Batch, DeviceStore, Namespace};
use proptest::prelude::*;
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
enum Op {
    Put(Namespace, Vec<u8>, Vec<u8>),
    Delete(Namespace, Vec<u8>),
}

fn namespace() -> impl Strategy<Value = Namespace> {
    proptest::sample::select(Namespace::ALL.to_vec())
}

fn op() -> impl Strategy<Value = Op> {
    // Few distinct keys, so puts overwrite and deletes hit.
    let key = proptest::collection::vec(0u8..4, 0..3);
    prop_oneof![
        3 => (namespace(), key.clone(), proptest::collection::vec(any::<u8>(), 0..300))
            .prop_map(|(ns, k, v)| Op::Put(ns, k, v)),
        1 => (namespace(), key).prop_map(|(ns, k)| Op::Delete(ns, k)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_batches_match_a_model_after_reopening(
        batches in proptest::collection::vec(proptest::collection::vec(op(), 0..8), 1..10),
        reopen_every in 1usize..5,
    ) {
        let (_dir, path) = fresh();
        let mut model: BTreeMap<(Namespace, Vec<u8>), Vec<u8>> = BTreeMap::new();
        let mut store = DeviceStore::open(&path, &key(3)).expect("open");
        for (i, ops) in batches.into_iter().enumerate() {
            let mut batch = Batch::new();
            for op in ops {
                match op {
                    Op::Put(ns, k, v) => {
                        batch.put(ns, &k, &v);
                        model.insert((ns, k), v);
                    }
                    Op::Delete(ns, k) => {
                        batch.delete(ns, &k);
                        model.remove(&(ns, k));
                    }
                }
            }
            store.commit(batch).expect("commit");
            if i % reopen_every == 0 {
                drop(store);
                store = DeviceStore::open(&path, &key(3)).expect("reopen");
            }
        }
        drop(store);
        let store = DeviceStore::open(&path, &key(3)).expect("reopen");
        for ns in Namespace::ALL {
            let expected: Vec<(Vec<u8>, Vec<u8>)> = model
                .iter()
                .filter(|((m, _), _)| *m == ns)
                .map(|((_, k), v)| (k.clone(), v.clone()))
                .collect();
            prop_assert_eq!(store.scan(ns).expect("scan"), expected.clone());
            prop_assert_eq!(
                store.keys(ns).expect("keys"),
                expected.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>()
            );
            for (k, v) in &expected {
                prop_assert_eq!(store.get(ns, k).expect("get"), Some(v.clone()));
            }
        }
    }
}
