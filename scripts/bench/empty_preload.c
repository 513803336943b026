/* An LD_PRELOAD library that does nothing: the exec workload's floor. Whatever a
 * process pays for it (open, mmap, relocate and map one more small file) any
 * preloaded library pays; what libmifshim.so costs beyond it is its own. */
int mifbench_empty_preload_marker;
