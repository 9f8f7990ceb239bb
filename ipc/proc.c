/* Process identity and liveness from /proc (see proc.h). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proc.h"

int shmrt_proc_identify(pid_t pid, struct shmrt_proc_id *out)
{
	char path[64], buf[1024];
	if (pid == 0)
		pid = getpid();
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	int err = errno;
	close(fd);
	if (n <= 0)
		return n < 0 ? -err : -ESRCH;
	buf[n] = '\0';
	/* The command name (field 2) may hold spaces and ')': the fields we
	 * want start after the last ')'. */
	char *p = strrchr(buf, ')');
	if (!p)
		return -EIO;
	p++;
	/* Field 3, the state: a zombie has exited even though its pid is not
	 * yet reaped, and must count as dead. */
	if (p[0] == ' ' && (p[1] == 'Z' || p[1] == 'X'))
		return -ESRCH;
	/* After ')' come fields 3.. ; start time is field 22, the 20th of them. */
	for (int field = 3; field < 22; field++) {
		p = strchr(p + 1, ' ');
		if (!p)
			return -EIO;
	}
	char *end;
	errno = 0;
	unsigned long long t = strtoull(p + 1, &end, 10);
	if (errno || end == p + 1)
		return -EIO;
	out->pid = (int32_t)pid;
	out->start_time = t;
	return 0;
}

bool shmrt_proc_alive(const struct shmrt_proc_id *id)
{
	if (id->pid <= 0)
		return false;
	struct shmrt_proc_id now;
	int rc = shmrt_proc_identify(id->pid, &now);
	if (rc == -ESRCH)
		return false;
	if (rc < 0) /* /proc unreadable (hidepid): fall back on the pid alone */
		return kill(id->pid, 0) == 0 || errno == EPERM;
	return now.start_time == id->start_time;
}
