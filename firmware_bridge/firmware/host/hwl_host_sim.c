/*
 * The C firmware (src/) built for a POSIX host: an arm simulated on a pseudo-terminal.
 *
 * Prints the PTY path on its first line, then serves until SIGINT/SIGTERM. The HAL drives an ideal plant
 * (measured = reference while torque is on; the joints stay put with torque off). A client that opens the PTY at
 * another baud rate than --baud sees garbage, as it would on a real UART.
 *
 *   hwl_host_sim [--joints N] [--arm A] [--state-rate HZ] [--control-rate HZ] [--pos-min CSV] [--pos-max CSV]
 *                [--max-vel CSV] [--max-acc CSV] [--initial CSV] [--gripper MIN,MAX,VEL,ACC | --no-gripper]
 *                [--initial-gripper M] [--firmware-id ID] [--baud B] [--link PATH] [--print-schema]
 *                [--parent-pid PID] [--deathsig]
 * A CSV with one value applies to every joint. --parent-pid: exit as soon as PID is no longer this process's
 * parent (it died: a simulator must never outlive the client that started it); --deathsig: also ask Linux to send
 * SIGTERM when the parent thread dies (immediate; only meaningful when that thread lives as long as the parent).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "hwl_firmware.h"

typedef struct {
    unsigned n;
    float pos[HWL_MAX_JOINTS];
    float vel[HWL_MAX_JOINTS];
    float gripper;
    int torque;
    int master;
    int slave;
    speed_t baud;
    int check_baud;
} host_t;

static volatile sig_atomic_t stop_requested = 0;

static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

static uint64_t host_time_us(void *ctx) {
    struct timespec ts;
    (void)ctx;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void host_read_joints(void *ctx, float *positions, float *velocities, float *effort, float *gripper) {
    host_t *h = (host_t *)ctx;
    unsigned i;
    for (i = 0; i < h->n; i++) {
        positions[i] = h->pos[i];
        velocities[i] = h->vel[i];
        if (effort != NULL) {
            effort[i] = 0.0f;
        }
    }
    *gripper = h->gripper;
}

static void host_write_setpoints(void *ctx, const float *positions, const float *velocities, float gripper) {
    host_t *h = (host_t *)ctx;
    unsigned i;
    if (!h->torque) {
        return;
    }
    for (i = 0; i < h->n; i++) {
        h->pos[i] = positions[i];
        h->vel[i] = velocities[i];
    }
    h->gripper = gripper;
}

static void host_set_torque(void *ctx, int on) {
    host_t *h = (host_t *)ctx;
    unsigned i;
    h->torque = on;
    if (!on) {
        for (i = 0; i < h->n; i++) {
            h->vel[i] = 0.0f;
        }
    }
}

static int baud_ok(const host_t *h) {
    struct termios t;
    if (!h->check_baud || tcgetattr(h->slave, &t) != 0) {
        return 1;
    }
    return cfgetispeed(&t) == h->baud;
}

static void host_write_bytes(void *ctx, const uint8_t *data, size_t len) {
    host_t *h = (host_t *)ctx;
    uint8_t garbled[HWL_MAX_WIRE];
    const uint8_t *out = data;
    ssize_t n;
    if (!baud_ok(h) && len <= sizeof(garbled)) {
        size_t i;
        for (i = 0; i < len; i++) {
            garbled[i] = (uint8_t)(((data[i] * 37u + 11u) & 0xFFu) | 0x01u);
        }
        out = garbled;
    }
    n = write(h->master, out, len);
    (void)n; /* a full buffer drops the frame, as a UART FIFO would; the host sees a sequence gap */
}

static int parse_csv(const char *arg, float *out, unsigned n, const char *name) {
    unsigned count = 0;
    const char *p = arg;
    while (*p != '\0' && count < HWL_MAX_JOINTS) {
        char *end;
        double v = strtod(p, &end);
        if (end == p) {
            fprintf(stderr, "hwl_host_sim: %s: not a number list: %s\n", name, arg);
            return -1;
        }
        out[count++] = (float)v;
        p = (*end == ',') ? end + 1 : end;
        if (*end != ',' && *end != '\0') {
            fprintf(stderr, "hwl_host_sim: %s: not a number list: %s\n", name, arg);
            return -1;
        }
    }
    if (count == 1) {
        unsigned i;
        for (i = 1; i < n; i++) {
            out[i] = out[0];
        }
        return 0;
    }
    if (count != n) {
        fprintf(stderr, "hwl_host_sim: %s: expected 1 or %u values, got %u\n", name, n, count);
        return -1;
    }
    return 0;
}

static speed_t baud_constant(long baud, int *known) {
    *known = 1;
    switch (baud) {
    case 9600: return B9600;
    case 19200: return B19200;
    case 38400: return B38400;
    case 57600: return B57600;
    case 115200: return B115200;
    case 230400: return B230400;
#ifdef B460800
    case 460800: return B460800;
#endif
#ifdef B921600
    case 921600: return B921600;
#endif
#ifdef B1000000
    case 1000000: return B1000000;
#endif
#ifdef B2000000
    case 2000000: return B2000000;
#endif
#ifdef B3000000
    case 3000000: return B3000000;
#endif
    default: *known = 0; return B38400;
    }
}

static void make_raw(int fd, speed_t baud, int set_baud) {
    struct termios t;
    if (tcgetattr(fd, &t) != 0) {
        return;
    }
    t.c_iflag &= (tcflag_t) ~(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
    t.c_oflag &= (tcflag_t)~OPOST;
    t.c_lflag &= (tcflag_t) ~(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
    t.c_cflag &= (tcflag_t) ~(CSIZE | PARENB);
    t.c_cflag |= CS8;
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    if (set_baud) {
        cfsetispeed(&t, baud);
        cfsetospeed(&t, baud);
    }
    tcsetattr(fd, TCSANOW, &t);
}

int main(int argc, char **argv) {
    hwl_config_t cfg;
    hwl_hal_t hal;
    static hwl_fw_t fw;
    host_t host;
    const char *link_path = NULL;
    char link_tmp[4096];
    char slave_path[256];
    const char *pos_min = "-2.9", *pos_max = "2.9", *max_vel = "2.0", *max_acc = "8.0", *initial = "0";
    const char *gripper = "0,0.08,0.1,0.5";
    double initial_gripper = -1.0;
    long baud = 1000000;
    int known_baud;
    int i;
    long parent_pid = 0;
    int deathsig = 0;
    struct sigaction sa;

    memset(&cfg, 0, sizeof(cfg));
    memset(&host, 0, sizeof(host));
    cfg.joint_count = 6;
    cfg.has_gripper = 1;
    cfg.state_rate_hz = 200;
    cfg.control_rate_hz = 1000;
    cfg.watchdog_hold_ms = 100;
    cfg.watchdog_off_ms = 1000;
    cfg.firmware_version[0] = 0;
    cfg.firmware_version[1] = 1;
    cfg.firmware_version[2] = 0;
    memcpy(cfg.firmware_id, "harmowam-sim-c", sizeof("harmowam-sim-c") - 1);

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = (i + 1 < argc) ? argv[i + 1] : NULL;
        if (strcmp(a, "--print-schema") == 0) {
            fputs(hwl_schema_text, stdout);
            return 0;
        }
        if (strcmp(a, "--no-gripper") == 0) {
            cfg.has_gripper = 0;
            continue;
        }
        if (strcmp(a, "--deathsig") == 0) {
            deathsig = 1;
            continue;
        }
        if (v == NULL) {
            fprintf(stderr, "hwl_host_sim: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (strcmp(a, "--joints") == 0) {
            int n = atoi(v);
            if (n < 1 || n > HWL_MAX_JOINTS) {
                fprintf(stderr, "hwl_host_sim: --joints: expected 1..%d, got %s\n", HWL_MAX_JOINTS, v);
                return 2;
            }
            cfg.joint_count = (uint8_t)n;
        } else if (strcmp(a, "--arm") == 0) {
            cfg.arm = (uint8_t)atoi(v);
        } else if (strcmp(a, "--state-rate") == 0) {
            cfg.state_rate_hz = (uint16_t)atoi(v);
        } else if (strcmp(a, "--control-rate") == 0) {
            cfg.control_rate_hz = (uint16_t)atoi(v);
        } else if (strcmp(a, "--pos-min") == 0) {
            pos_min = v;
        } else if (strcmp(a, "--pos-max") == 0) {
            pos_max = v;
        } else if (strcmp(a, "--max-vel") == 0) {
            max_vel = v;
        } else if (strcmp(a, "--max-acc") == 0) {
            max_acc = v;
        } else if (strcmp(a, "--initial") == 0) {
            initial = v;
        } else if (strcmp(a, "--gripper") == 0) {
            gripper = v;
            cfg.has_gripper = 1;
        } else if (strcmp(a, "--initial-gripper") == 0) {
            initial_gripper = atof(v);
        } else if (strcmp(a, "--firmware-id") == 0) {
            size_t len = strlen(v);
            memset(cfg.firmware_id, 0, sizeof(cfg.firmware_id)); /* NUL-padded, not NUL-terminated */
            memcpy(cfg.firmware_id, v, len < HWL_FIRMWARE_ID_SIZE ? len : HWL_FIRMWARE_ID_SIZE);
        } else if (strcmp(a, "--baud") == 0) {
            baud = atol(v);
        } else if (strcmp(a, "--link") == 0) {
            link_path = v;
        } else if (strcmp(a, "--parent-pid") == 0) {
            parent_pid = atol(v);
        } else {
            fprintf(stderr, "hwl_host_sim: unknown option %s\n", a);
            return 2;
        }
    }
    host.n = cfg.joint_count;
    if (parse_csv(pos_min, cfg.position_min, host.n, "--pos-min") || parse_csv(pos_max, cfg.position_max, host.n, "--pos-max") ||
        parse_csv(max_vel, cfg.max_velocity, host.n, "--max-vel") || parse_csv(max_acc, cfg.max_acceleration, host.n, "--max-acc") ||
        parse_csv(initial, host.pos, host.n, "--initial") || (cfg.has_gripper && parse_csv(gripper, cfg.gripper_limits, 4, "--gripper"))) {
        return 2;
    }
    host.gripper = (initial_gripper >= 0.0 && cfg.has_gripper) ? (float)initial_gripper : cfg.gripper_limits[0];
    cfg.boot_id = (uint32_t)host_time_us(NULL) ^ ((uint32_t)getpid() << 16);
    host.baud = baud_constant(baud, &known_baud);
    host.check_baud = known_baud;

    host.master = posix_openpt(O_RDWR | O_NOCTTY);
    if (host.master < 0 || grantpt(host.master) != 0 || unlockpt(host.master) != 0 || ptsname(host.master) == NULL) {
        fprintf(stderr, "hwl_host_sim: cannot create a pseudo-terminal: %s\n", strerror(errno));
        return 1;
    }
    strncpy(slave_path, ptsname(host.master), sizeof(slave_path) - 1);
    slave_path[sizeof(slave_path) - 1] = '\0';
    /* keep a slave fd open: with none open, reads on the master fail with EIO between clients */
    host.slave = open(slave_path, O_RDWR | O_NOCTTY);
    if (host.slave < 0) {
        fprintf(stderr, "hwl_host_sim: cannot open %s: %s\n", slave_path, strerror(errno));
        return 1;
    }
    make_raw(host.slave, host.baud, known_baud);
    fcntl(host.master, F_SETFL, fcntl(host.master, F_GETFL) | O_NONBLOCK);
    if (link_path != NULL) {
        snprintf(link_tmp, sizeof(link_tmp), "%s.%ld.tmp", link_path, (long)getpid());
        unlink(link_tmp);
        if (symlink(slave_path, link_tmp) != 0 || rename(link_tmp, link_path) != 0) {
            fprintf(stderr, "hwl_host_sim: cannot create the symlink %s: %s\n", link_path, strerror(errno));
            return 1;
        }
    }

    hal.ctx = &host;
    hal.time_us = host_time_us;
    hal.read_joints = host_read_joints;
    hal.write_setpoints = host_write_setpoints;
    hal.set_torque = host_set_torque;
    hal.write_bytes = host_write_bytes;
    hal.estop_input = NULL;
    hal.drive_fault = NULL;
    if (hwl_fw_init(&fw, &cfg, &hal) != 0) {
        fprintf(stderr, "hwl_host_sim: invalid configuration (joint limits, rates or watchdog)\n");
        return 2;
    }

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
#ifdef __linux__
    if (deathsig) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
    }
#else
    (void)deathsig;
#endif
    /* the parent may have died before the request above took effect: it no longer is our parent then */
    if (parent_pid > 0 && (long)getppid() != parent_pid) {
        stop_requested = 1;
    }

    printf("%s\n", link_path != NULL ? link_path : slave_path);
    fflush(stdout);

    while (!stop_requested) {
        fd_set rd;
        struct timeval tv;
        uint64_t now = host_time_us(NULL);
        uint64_t deadline = hwl_fw_next_deadline_us(&fw);
        uint64_t wait = deadline > now ? deadline - now : 0;
        int r;
        if (wait > 50000u) {
            wait = 50000u;
        }
        tv.tv_sec = (long)(wait / 1000000u);
        tv.tv_usec = (long)(wait % 1000000u);
        FD_ZERO(&rd);
        FD_SET(host.master, &rd);
        r = select(host.master + 1, &rd, NULL, NULL, &tv);
        if (r > 0 && FD_ISSET(host.master, &rd)) {
            uint8_t buf[4096];
            ssize_t n = read(host.master, buf, sizeof(buf));
            if (n > 0 && baud_ok(&host)) {
                hwl_fw_rx(&fw, buf, (size_t)n);
            }
        } else if (r < 0 && errno != EINTR) {
            fprintf(stderr, "hwl_host_sim: select: %s\n", strerror(errno));
            break;
        }
        hwl_fw_poll(&fw);
        if (parent_pid > 0 && (long)getppid() != parent_pid) {
            break; /* orphaned (re-parented to init or a subreaper): the client is gone, stop serving */
        }
    }
    if (link_path != NULL) {
        unlink(link_path);
    }
    close(host.slave);
    close(host.master);
    return 0;
}
