//! Rivulet data plane: route table, pod claiming and specialization, proxy.
