// Hop B of the chain test (Java 17, JDK only). It forwards NOTHING to hop C: no trace header, no custom
// header, only the path (the test's request number, which no cohort rule matches). Whether the request to C
// is dyed must therefore come from the kernel's thread inheritance, which needs this shape:
//   THREAD-PER-REQUEST: the thread that reads a request from A is the thread that connects/sends to C and then
//   answers A. Here: a plain ServerSocket, one thread per accepted connection, which reads one request, calls
//   C synchronously with HttpURLConnection (it connects and writes on the calling thread; its keep-alive pool
//   is shared by all threads), writes the answer, and only then reads the next request. An async hand-off
//   (java.net.http.HttpClient's selector thread, a reactive server, a worker pool fed by an I/O thread)
//   would send from another thread and break inheritance.
import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;

public class HopB {
  public static void main(String[] args) throws Exception {
    String host = args[0];
    int port = Integer.parseInt(args[1]);
    String upstream = args[2];
    System.setProperty("http.keepAlive", "true");
    System.setProperty("http.maxConnections", "4");
    ServerSocket server = new ServerSocket();
    server.setReuseAddress(true);
    server.bind(new InetSocketAddress(host, port), 128);
    System.out.println("{\"ready\":true,\"hop\":\"B\",\"pid\":" + ProcessHandle.current().pid() + "}");
    System.out.flush();
    while (true) {
      Socket s = server.accept();
      Thread t = new Thread(() -> serve(s, upstream), "hopB-conn-" + s.getPort());
      t.setDaemon(true);
      t.start();
    }
  }

  /** Linux thread id of the calling thread, from /proc/thread-self -> "<pid>/task/<tid>". */
  static long linuxTid() {
    try {
      String link = Files.readSymbolicLink(Paths.get("/proc/thread-self")).toString();
      return Long.parseLong(link.substring(link.lastIndexOf('/') + 1));
    } catch (Exception e) {
      return -1;
    }
  }

  static String readLine(InputStream in) throws IOException {
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    int c;
    while ((c = in.read()) != -1) {
      if (c == '\n') break;
      if (c != '\r') buf.write(c);
    }
    if (c == -1 && buf.size() == 0) return null;
    return buf.toString(StandardCharsets.ISO_8859_1);
  }

  static void serve(Socket s, String upstream) {
    long tid = linuxTid();
    try (s) {
      s.setTcpNoDelay(true);
      InputStream in = new BufferedInputStream(s.getInputStream());
      OutputStream out = s.getOutputStream();
      while (true) {
        String requestLine = readLine(in);
        if (requestLine == null) return;
        if (requestLine.isEmpty()) continue;
        String[] parts = requestLine.split(" ");
        String path = parts.length > 1 ? parts[1] : "/";
        int contentLength = 0;
        boolean close = false;
        String h;
        while ((h = readLine(in)) != null && !h.isEmpty()) {
          String lower = h.toLowerCase();
          if (lower.startsWith("content-length:")) contentLength = Integer.parseInt(lower.substring(15).trim());
          if (lower.startsWith("connection:") && lower.contains("close")) close = true;
        }
        if (contentLength > 0) in.readNBytes(contentLength);

        // Same thread: connect (if the pool has no idle connection) and send to C.
        int status;
        byte[] body;
        try {
          HttpURLConnection c = (HttpURLConnection) new URL(upstream + path).openConnection();
          c.setUseCaches(false);
          c.setConnectTimeout(5000);
          c.setReadTimeout(15000);
          status = c.getResponseCode();
          InputStream cin = status >= 400 ? c.getErrorStream() : c.getInputStream();
          body = cin == null ? new byte[0] : cin.readAllBytes();
          if (cin != null) cin.close(); // read to the end and closed: the connection goes back to the pool
        } catch (IOException e) {
          status = 502;
          body = ("\"B: upstream: " + e.getMessage().replace("\"", "'") + "\"").getBytes(StandardCharsets.UTF_8);
        }
        String inner = new String(body, StandardCharsets.UTF_8);
        if (inner.isEmpty()) inner = "null";
        byte[] reply =
            ("{\"hop\":\"B\",\"tid\":" + tid + ",\"inner\":" + inner + "}").getBytes(StandardCharsets.UTF_8);
        String head =
            "HTTP/1.1 " + status + " " + (status == 200 ? "OK" : "Error") + "\r\n"
                + "Content-Type: application/json\r\n"
                + "Content-Length: " + reply.length + "\r\n"
                + (close ? "Connection: close\r\n" : "")
                + "\r\n";
        ByteArrayOutputStream msg = new ByteArrayOutputStream();
        msg.write(head.getBytes(StandardCharsets.ISO_8859_1));
        msg.write(reply);
        out.write(msg.toByteArray());
        out.flush();
        synchronized (HopB.class) {
          System.out.println("{\"hop\":\"B\",\"path\":\"" + path + "\",\"tid\":" + tid + ",\"status\":" + status + "}");
          System.out.flush();
        }
        if (close) return;
      }
    } catch (IOException e) {
      // peer closed or reset: the thread ends with its connection
    }
  }
}
