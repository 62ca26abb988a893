// A small Express service: GET /health answers {"status":"ok"}. Listens on $PORT (default
// 3000), on every interface so it answers from inside a container.
import express, { Request, Response } from "express";
import { greeting } from "./greeting";

const app = express();
const port = Number(process.env.PORT ?? 3000);

app.get("/health", (_req: Request, res: Response) => {
  res.json({ status: "ok" });
});

app.get("/", (req: Request, res: Response) => {
  res.type("text/plain").send(greeting(String(req.query.name ?? "world")) + "\n");
});

const server = app.listen(port, "0.0.0.0", () => {
  console.log(`listening on ${port}`);
});

process.on("SIGTERM", () => server.close(() => process.exit(0)));
