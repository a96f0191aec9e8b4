# Runs a command with its standard output on a pipe nobody reads: prints the command's pid once
# the pipe is full (the command is then stuck writing), waits for it to end, and prints its exit
# status and standard error as JSON. Used to make a real stop hang (test/integration/stop-watchdog.test.ts).
import fcntl, json, os, subprocess, sys, termios, time, struct

F_GETPIPE_SZ = 1032
read_end, write_end = os.pipe()
capacity = fcntl.fcntl(read_end, F_GETPIPE_SZ)
child = subprocess.Popen(sys.argv[1:], stdout=write_end, stderr=subprocess.PIPE)
os.close(write_end)
deadline = time.time() + 20
def queued():
    return struct.unpack("i", fcntl.ioctl(read_end, termios.FIONREAD, b"\0\0\0\0"))[0]
# Full: less than one page left (a writer's last chunk rarely fits to the byte).
PAGE_BYTES = 4096
while queued() <= capacity - PAGE_BYTES and child.poll() is None and time.time() < deadline:
    time.sleep(0.02)
print(json.dumps({"pid": child.pid, "full": queued() > capacity - PAGE_BYTES}), flush=True)
stderr = child.stderr.read()
status = child.wait()
print(json.dumps({"status": status, "stderr": stderr.decode(errors="replace")}), flush=True)
