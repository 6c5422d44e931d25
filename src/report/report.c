/* The exit report and mem_lhihiks: a stub until the real report lands. */
#include "internal.h"

void hh_report_exit(void) {}
void hh_report_summary(int fd, size_t min_size) {
  (void)fd;
  (void)min_size;
}
void hh_report_atfork_prepare(void) {}
void hh_report_atfork_parent(void) {}
void hh_report_atfork_child(void) {}
