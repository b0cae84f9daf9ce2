//! A vppinfra-style pool: indices are stable, a freed index goes on a free list and the most
//! recently freed one is handed out first (vppinfra pool.h `_pool_get` pops the last entry of
//! `free_indices`; `_pool_put_index` appends). VPP's app, app-worker, worker-map,
//! segment-manager, segment, socket and cert/key indices all come from such pools, so clients
//! see the same numbers from the peer as from VPP.

/// A pool of `T` with VPP's index reuse order.
#[derive(Debug)]
pub struct Pool<T> {
    elts: Vec<Option<T>>,
    free: Vec<u32>,
}

impl<T> Default for Pool<T> {
    fn default() -> Self {
        Pool {
            elts: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<T> Pool<T> {
    /// The index the next [`Pool::put`] will use.
    pub fn next_index(&self) -> u32 {
        match self.free.last() {
            Some(&i) => i,
            None => self.elts.len() as u32,
        }
    }

    /// Insert `v`, returning its index.
    pub fn put(&mut self, v: T) -> u32 {
        self.put_with(|_| v)
    }

    /// Insert the value built from its index.
    pub fn put_with(&mut self, f: impl FnOnce(u32) -> T) -> u32 {
        match self.free.pop() {
            Some(i) => {
                self.elts[i as usize] = Some(f(i));
                i
            }
            None => {
                let i = self.elts.len() as u32;
                self.elts.push(Some(f(i)));
                i
            }
        }
    }

    /// Remove and return the element at `i` (None if free or out of range).
    pub fn remove(&mut self, i: u32) -> Option<T> {
        let v = self.elts.get_mut(i as usize)?.take()?;
        self.free.push(i);
        Some(v)
    }

    pub fn get(&self, i: u32) -> Option<&T> {
        self.elts.get(i as usize)?.as_ref()
    }

    pub fn get_mut(&mut self, i: u32) -> Option<&mut T> {
        self.elts.get_mut(i as usize)?.as_mut()
    }

    pub fn contains(&self, i: u32) -> bool {
        self.get(i).is_some()
    }

    /// Number of live elements (`pool_elts`).
    pub fn len(&self) -> usize {
        self.elts.len() - self.free.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Live (index, element) pairs in index order (`pool_foreach`).
    pub fn iter(&self) -> impl Iterator<Item = (u32, &T)> {
        self.elts
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.as_ref().map(|e| (i as u32, e)))
    }

    /// Indices of live elements.
    pub fn indices(&self) -> Vec<u32> {
        self.iter().map(|(i, _)| i).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::Pool;

    #[test]
    fn reuses_the_last_freed_index_first() {
        let mut p = Pool::default();
        for i in 0..4 {
            assert_eq!(p.put(i), i);
        }
        p.remove(1);
        p.remove(3);
        assert_eq!(p.next_index(), 3);
        assert_eq!(p.put(10), 3);
        assert_eq!(p.put(11), 1);
        assert_eq!(p.put(12), 4);
        assert_eq!(p.len(), 5);
        assert!(p.remove(9).is_none());
    }
}
