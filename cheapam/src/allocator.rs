//! Pure IPv4 pod-CIDR allocator.
//!
//! The pod range (e.g. `10.133.0.0/16`) is cut into blocks of one prefix length
//! (e.g. `/24`). Each node holds at most one block and each block belongs to at
//! most one node. There is no persisted state: at start the allocator is
//! rebuilt from the `spec.podCIDR` of every Node, and Nodes are the only
//! source of truth, so a restart never hands out a block twice.

use ipnet::Ipv4Net;
use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;

/// Why a recorded allocation could not be imported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error("{cidr} is not a /{prefix} block inside the pod range {range}")]
    OutOfRange {
        cidr: Ipv4Net,
        range: Ipv4Net,
        prefix: u8,
    },
    #[error("{cidr} is already held by node {holder}")]
    Taken { cidr: Ipv4Net, holder: String },
    #[error("node already holds {held}, cannot also hold {cidr}")]
    NodeHoldsOther { held: Ipv4Net, cidr: Ipv4Net },
}

/// First-free allocator of equal-sized IPv4 blocks.
#[derive(Debug, Clone)]
pub struct Allocator {
    range: Ipv4Net,
    prefix: u8,
    /// block index -> node name
    by_block: BTreeMap<u32, String>,
    /// node name -> block index
    by_node: HashMap<String, u32>,
}

impl Allocator {
    /// `range` must be a network (host bits zero) and `prefix` in `range.prefix_len()+1 ..= 30`;
    /// [`crate::config`] validates that before building one.
    pub fn new(range: Ipv4Net, prefix: u8) -> Self {
        Self {
            range: range.trunc(),
            prefix,
            by_block: BTreeMap::new(),
            by_node: HashMap::new(),
        }
    }

    pub fn range(&self) -> Ipv4Net {
        self.range
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Number of blocks in the range.
    pub fn capacity(&self) -> u64 {
        1u64 << (self.prefix - self.range.prefix_len())
    }

    pub fn used(&self) -> u64 {
        self.by_block.len() as u64
    }

    pub fn free(&self) -> u64 {
        self.capacity() - self.used()
    }

    fn block(&self, index: u32) -> Ipv4Net {
        let base = u32::from(self.range.network());
        let size = 1u64 << (32 - self.prefix);
        let addr = (u64::from(base) + u64::from(index) * size) as u32;
        Ipv4Net::new(Ipv4Addr::from(addr), self.prefix).expect("prefix validated at construction")
    }

    fn index_of(&self, cidr: Ipv4Net) -> Option<u32> {
        if cidr.prefix_len() != self.prefix
            || cidr.trunc() != cidr
            || !self.range.contains(&cidr.network())
        {
            return None;
        }
        let offset = u32::from(cidr.network()) - u32::from(self.range.network());
        Some(offset >> (32 - self.prefix))
    }

    /// The block a node holds, if any.
    pub fn get(&self, node: &str) -> Option<Ipv4Net> {
        self.by_node.get(node).map(|&i| self.block(i))
    }

    /// Who holds a block.
    pub fn holder(&self, cidr: Ipv4Net) -> Option<&str> {
        self.index_of(cidr)
            .and_then(|i| self.by_block.get(&i))
            .map(String::as_str)
    }

    /// Record an allocation observed on a Node (`spec.podCIDR`). Idempotent.
    pub fn import(&mut self, node: &str, cidr: Ipv4Net) -> Result<(), ImportError> {
        let index = self.index_of(cidr).ok_or(ImportError::OutOfRange {
            cidr,
            range: self.range,
            prefix: self.prefix,
        })?;
        if let Some(holder) = self.by_block.get(&index) {
            if holder == node {
                return Ok(());
            }
            return Err(ImportError::Taken {
                cidr,
                holder: holder.clone(),
            });
        }
        if let Some(&held) = self.by_node.get(node) {
            // A reservation made by us whose patch never landed is replaced by
            // what the apiserver says the node has.
            self.by_block.remove(&held);
        }
        self.by_block.insert(index, node.to_string());
        self.by_node.insert(node.to_string(), index);
        Ok(())
    }

    /// The node's block, reserving the first free one if it has none.
    /// `None` when the range is exhausted.
    pub fn allocate(&mut self, node: &str) -> Option<Ipv4Net> {
        if let Some(cidr) = self.get(node) {
            return Some(cidr);
        }
        let capacity = self.capacity();
        // First free index: walk the used indices in order and stop at the first gap.
        let mut candidate: u64 = 0;
        for &used in self.by_block.keys() {
            if u64::from(used) != candidate {
                break;
            }
            candidate += 1;
        }
        if candidate >= capacity {
            return None;
        }
        let index = candidate as u32;
        self.by_block.insert(index, node.to_string());
        self.by_node.insert(node.to_string(), index);
        Some(self.block(index))
    }

    /// Free the node's block. Returns it if there was one.
    pub fn release(&mut self, node: &str) -> Option<Ipv4Net> {
        let index = self.by_node.remove(node)?;
        self.by_block.remove(&index);
        Some(self.block(index))
    }

    /// Free every block whose node is not in `alive`. Returns the freed (node, block) pairs.
    pub fn retain<F: Fn(&str) -> bool>(&mut self, alive: F) -> Vec<(String, Ipv4Net)> {
        let gone: Vec<String> = self.by_node.keys().filter(|n| !alive(n)).cloned().collect();
        let mut freed = Vec::with_capacity(gone.len());
        for node in gone {
            if let Some(cidr) = self.release(&node) {
                freed.push((node, cidr));
            }
        }
        freed.sort();
        freed
    }

    /// Every (node, block) pair, in block order.
    pub fn allocations(&self) -> Vec<(String, Ipv4Net)> {
        self.by_block
            .iter()
            .map(|(&i, n)| (n.clone(), self.block(i)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn first_free_and_reuse() {
        let mut a = Allocator::new(net("10.133.0.0/16"), 24);
        assert_eq!(a.capacity(), 256);
        assert_eq!(a.allocate("a"), Some(net("10.133.0.0/24")));
        assert_eq!(a.allocate("b"), Some(net("10.133.1.0/24")));
        assert_eq!(a.allocate("a"), Some(net("10.133.0.0/24")), "idempotent");
        assert_eq!(a.release("a"), Some(net("10.133.0.0/24")));
        assert_eq!(a.allocate("c"), Some(net("10.133.0.0/24")), "first free");
        assert_eq!(a.allocate("d"), Some(net("10.133.2.0/24")));
        assert_eq!(a.used(), 3);
    }

    #[test]
    fn exhaustion_is_none() {
        let mut a = Allocator::new(net("10.0.0.0/23"), 24);
        assert!(a.allocate("a").is_some());
        assert!(a.allocate("b").is_some());
        assert_eq!(a.allocate("c"), None);
        assert_eq!(a.free(), 0);
    }

    #[test]
    fn import_rules() {
        let mut a = Allocator::new(net("10.133.0.0/16"), 24);
        a.import("a", net("10.133.5.0/24")).unwrap();
        a.import("a", net("10.133.5.0/24")).unwrap();
        assert!(matches!(
            a.import("b", net("10.133.5.0/24")),
            Err(ImportError::Taken { .. })
        ));
        assert!(matches!(
            a.import("b", net("10.134.0.0/24")),
            Err(ImportError::OutOfRange { .. })
        ));
        assert!(matches!(
            a.import("b", net("10.133.0.0/25")),
            Err(ImportError::OutOfRange { .. })
        ));
        assert_eq!(a.allocate("b"), Some(net("10.133.0.0/24")));
        assert_eq!(a.holder(net("10.133.5.0/24")), Some("a"));
    }

    #[test]
    fn retain_frees_gone_nodes() {
        let mut a = Allocator::new(net("10.133.0.0/16"), 24);
        a.allocate("a");
        a.allocate("b");
        let freed = a.retain(|n| n == "b");
        assert_eq!(freed, vec![("a".to_string(), net("10.133.0.0/24"))]);
        assert_eq!(a.allocate("c"), Some(net("10.133.0.0/24")));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Add(u8),
        Remove(u8),
        Restart,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u8..40).prop_map(Op::Add),
            2 => (0u8..40).prop_map(Op::Remove),
            1 => Just(Op::Restart),
        ]
    }

    proptest! {
        /// Model: "nodes" is what the apiserver holds (node -> podCIDR once
        /// patched). The allocator is rebuilt from it on restart, as at start.
        #[test]
        fn never_double_allocates_nor_leaks(ops in proptest::collection::vec(op(), 1..200)) {
            let range = net("10.0.0.0/26");
            let prefix = 29; // 8 blocks, fewer than the 40 node names: exhaustion happens
            let mut alloc = Allocator::new(range, prefix);
            let mut nodes: HashMap<String, Option<Ipv4Net>> = HashMap::new();
            for op in ops {
                match op {
                    Op::Add(n) => {
                        let name = format!("n{n}");
                        let entry = nodes.entry(name.clone()).or_insert(None);
                        if entry.is_none() {
                            *entry = alloc.allocate(&name);
                        }
                    }
                    Op::Remove(n) => {
                        let name = format!("n{n}");
                        nodes.remove(&name);
                        alloc.release(&name);
                    }
                    Op::Restart => {
                        alloc = Allocator::new(range, prefix);
                        for (name, cidr) in &nodes {
                            if let Some(c) = cidr {
                                prop_assert!(alloc.import(name, *c).is_ok());
                            }
                        }
                    }
                }
                // Requeued nodes that still wait for a block retry.
                let mut waiting: Vec<String> = nodes
                    .iter()
                    .filter(|(_, c)| c.is_none())
                    .map(|(n, _)| n.clone())
                    .collect();
                waiting.sort();
                for name in waiting {
                    let got = alloc.allocate(&name);
                    nodes.insert(name, got);
                }
                // No block held by two live nodes.
                let held: Vec<Ipv4Net> = nodes.values().flatten().copied().collect();
                let unique: HashSet<Ipv4Net> = held.iter().copied().collect();
                prop_assert_eq!(held.len(), unique.len());
                // No leak: the allocator holds exactly the live nodes' blocks.
                let mut want: Vec<(String, Ipv4Net)> = nodes
                    .iter()
                    .filter_map(|(n, c)| c.map(|c| (n.clone(), c)))
                    .collect();
                want.sort_by_key(|(_, c)| *c);
                prop_assert_eq!(alloc.allocations(), want);
                prop_assert_eq!(alloc.used() + alloc.free(), alloc.capacity());
                // Exhaustion only when really full.
                let waiting = nodes.values().filter(|c| c.is_none()).count();
                if waiting > 0 {
                    prop_assert_eq!(alloc.free(), 0);
                }
            }
        }
    }
}
