//! Moving plain JSON trees in and out of an Automerge document.
//!
//! The child file's types are ordinary serde structs; this module is the one place that knows
//! how such a tree lies in Automerge. Objects become maps, arrays become lists, and strings stay
//! scalar strings: DESIGN.md rules out collaborative Text for free text, which would cost several
//! times the memory and load time for no gain (two people never type into one visit note).

use automerge::transaction::Transactable;
use automerge::{ObjId, ObjType, Patch, PatchAction, Prop, ReadDoc, ScalarValueRef, ValueRef};
use serde_json::{Map, Number, Value};

/// Writes `value` under `prop` of `obj`, replacing what was there.
pub(crate) fn put<T: Transactable>(
    tx: &mut T,
    obj: &ObjId,
    prop: impl Into<Prop>,
    value: &Value,
) -> Result<(), automerge::AutomergeError> {
    let prop = prop.into();
    match value {
        Value::Object(map) => {
            let child = tx.put_object(obj, prop, ObjType::Map)?;
            for (k, v) in map {
                put(tx, &child, k.as_str(), v)?;
            }
        }
        Value::Array(items) => {
            let child = tx.put_object(obj, prop, ObjType::List)?;
            for (i, v) in items.iter().enumerate() {
                insert(tx, &child, i, v)?;
            }
        }
        scalar => tx.put(obj, prop, scalar_of(scalar))?,
    }
    Ok(())
}

/// Inserts `value` at `index` of the list `obj`.
pub(crate) fn insert<T: Transactable>(
    tx: &mut T,
    obj: &ObjId,
    index: usize,
    value: &Value,
) -> Result<(), automerge::AutomergeError> {
    match value {
        Value::Object(map) => {
            let child = tx.insert_object(obj, index, ObjType::Map)?;
            for (k, v) in map {
                put(tx, &child, k.as_str(), v)?;
            }
        }
        Value::Array(items) => {
            let child = tx.insert_object(obj, index, ObjType::List)?;
            for (i, v) in items.iter().enumerate() {
                insert(tx, &child, i, v)?;
            }
        }
        scalar => tx.insert(obj, index, scalar_of(scalar))?,
    }
    Ok(())
}

fn scalar_of(value: &Value) -> automerge::ScalarValue {
    use automerge::ScalarValue as S;
    match value {
        Value::Null => S::Null,
        Value::Bool(b) => S::Boolean(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                S::Int(i)
            } else if let Some(u) = n.as_u64() {
                S::Uint(u)
            } else {
                S::F64(n.as_f64().unwrap_or(0.0))
            }
        }
        Value::String(s) => S::Str(s.as_str().into()),
        // Objects and arrays never reach here: `put` and `insert` handle them.
        Value::Object(_) | Value::Array(_) => S::Null,
    }
}

/// Reads the object `obj` as a JSON tree, taking the winning value of every conflict, except
/// for the root's version-2 collections (see [`union_collections`]).
pub(crate) fn read<D: ReadDoc>(doc: &D, obj: &ObjId) -> Value {
    let mut tree = read_object(doc, obj);
    if *obj == ObjId::Root {
        union_collections(doc, &mut tree);
    }
    tree
}

/// A file written before version 2 has none of version 2's collections, so two phones adding
/// the first entry of one offline each create the collection's map, and Automerge keeps one
/// map as the winner and the other as a conflict. Both hold entries keyed by fresh UUIDs: the
/// collection is read as their union, so neither phone's entry is lost. (Files created at
/// version 2 have every collection from the start and never meet this.)
fn union_collections<D: ReadDoc>(doc: &D, tree: &mut Value) {
    for key in super::parts::COLLECTIONS {
        let Ok(all) = doc.get_all(ObjId::Root, key) else {
            continue;
        };
        if all.len() < 2 {
            continue;
        }
        let Some(Value::Object(winner)) = tree.get_mut(key) else {
            continue;
        };
        for (value, id) in all {
            if let automerge::Value::Object(ObjType::Map) = value
                && let Value::Object(entries) = read_object(doc, &id)
            {
                for (k, v) in entries {
                    winner.entry(k).or_insert(v);
                }
            }
        }
    }
}

fn read_object<D: ReadDoc>(doc: &D, obj: &ObjId) -> Value {
    match doc.object_type(obj) {
        Ok(ObjType::Map) | Ok(ObjType::Table) => {
            let mut map = Map::new();
            for item in doc.map_range(obj, ..) {
                let v = match &item.value {
                    ValueRef::Object(_) => read(doc, &item.id()),
                    ValueRef::Scalar(s) => json_of(s),
                };
                map.insert(item.key.into_owned(), v);
            }
            Value::Object(map)
        }
        Ok(ObjType::List) => Value::Array(
            doc.list_range(obj, ..)
                .map(|item| match &item.value {
                    ValueRef::Object(_) => read(doc, &item.id()),
                    ValueRef::Scalar(s) => json_of(s),
                })
                .collect(),
        ),
        // A peer that wrote Text where we expect a string still reads as that string.
        Ok(ObjType::Text) => doc.text(obj).map(Value::String).unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

/// Brings a tree read at some heads up to date with Automerge's patches from those heads to
/// the document's current ones, as [`read`] would give it now. Returns `false` (the tree is
/// then unusable) on any patch it does not reproduce exactly: text splices, counters, marks,
/// or a path that does not lead anywhere. A merge of a few changes into a large file costs
/// microseconds this way, against a millisecond for reading the whole document again.
pub(crate) fn apply_patches(tree: &mut Value, patches: &[Patch]) -> bool {
    patches
        .iter()
        .all(|patch| !replaces_a_collection(patch) && apply_patch(tree, patch).is_some())
}

/// A version-2 collection put (again) at the root: possibly a second map for it, which only
/// reading the whole root unites (see [`union_collections`]).
fn replaces_a_collection(patch: &Patch) -> bool {
    patch.path.is_empty()
        && match &patch.action {
            PatchAction::PutMap { key, .. } => super::parts::COLLECTIONS.contains(&key.as_str()),
            PatchAction::Conflict {
                prop: Prop::Map(key),
            } => super::parts::COLLECTIONS.contains(&key.as_str()),
            _ => false,
        }
}

fn apply_patch(tree: &mut Value, patch: &Patch) -> Option<()> {
    let mut target = tree;
    for (_, prop) in &patch.path {
        target = match prop {
            Prop::Map(key) => target.as_object_mut()?.get_mut(key.as_str())?,
            Prop::Seq(index) => target.as_array_mut()?.get_mut(*index)?,
        };
    }
    match &patch.action {
        PatchAction::PutMap { key, value, .. } => {
            let v = json_of_value(&value.0)?;
            target.as_object_mut()?.insert(key.clone(), v);
        }
        PatchAction::PutSeq { index, value, .. } => {
            let v = json_of_value(&value.0)?;
            *target.as_array_mut()?.get_mut(*index)? = v;
        }
        PatchAction::Insert { index, values } => {
            let list = target.as_array_mut()?;
            if *index > list.len() {
                return None;
            }
            let new = values
                .iter()
                .map(|(v, _, _)| json_of_value(v))
                .collect::<Option<Vec<_>>>()?;
            list.splice(*index..*index, new);
        }
        PatchAction::DeleteMap { key } => {
            target.as_object_mut()?.remove(key.as_str())?;
        }
        PatchAction::DeleteSeq { index, length } => {
            let list = target.as_array_mut()?;
            if index + length > list.len() {
                return None;
            }
            list.drain(*index..index + length);
        }
        // The winner is unchanged (a changed winner comes as a put).
        PatchAction::Conflict { .. } => {}
        PatchAction::SpliceText { .. }
        | PatchAction::Increment { .. }
        | PatchAction::Mark { .. } => {
            return None;
        }
    }
    Some(())
}

/// A new value as [`read`] shows it: objects start empty (their contents come as patches).
fn json_of_value(value: &automerge::Value<'_>) -> Option<Value> {
    match value {
        automerge::Value::Object(ObjType::Map | ObjType::Table) => Some(Value::Object(Map::new())),
        automerge::Value::Object(ObjType::List) => Some(Value::Array(Vec::new())),
        // Text arrives as splices, which are not reproduced.
        automerge::Value::Object(ObjType::Text) => None,
        automerge::Value::Scalar(s) => match s.as_ref() {
            automerge::ScalarValue::Counter(_) => None,
            other => Some(json_of(&ScalarValueRef::from(other.clone()))),
        },
    }
}

fn json_of(s: &ScalarValueRef<'_>) -> Value {
    match s {
        ScalarValueRef::Str(s) => Value::String(s.to_string()),
        ScalarValueRef::Int(i) | ScalarValueRef::Counter(i) | ScalarValueRef::Timestamp(i) => {
            Value::Number((*i).into())
        }
        ScalarValueRef::Uint(u) => Value::Number((*u).into()),
        ScalarValueRef::F64(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
        ScalarValueRef::Boolean(b) => Value::Bool(*b),
        ScalarValueRef::Null | ScalarValueRef::Bytes(_) | ScalarValueRef::Unknown { .. } => {
            Value::Null
        }
    }
}
