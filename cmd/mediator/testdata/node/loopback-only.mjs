// loopback-only.mjs — preload (node --import ./loopback-only.mjs ...) that
// makes a server which listens on a bare port, as
// @modelcontextprotocol/server-everything's streamableHttp mode does with
// app.listen(PORT), bind to 127.0.0.1 instead of every interface. The tests
// only ever talk to loopback.
import net from "node:net";

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const port = args[0];
  const isPort = typeof port === "number" || (typeof port === "string" && /^\d+$/.test(port));
  if (isPort && typeof args[1] !== "string") {
    args.splice(1, 0, "127.0.0.1");
  }
  return listen.apply(this, args);
};
