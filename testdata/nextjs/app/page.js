import Counter from "./counter";

// Prerendered at build time (a static page); its CSS and the client component's JS are
// served from /_next/static.
export default function Home() {
  return (
    <main>
      <h1>Hello from a standalone build</h1>
      <Counter />
      <p>
        <a href="/hello.txt">a file from public/</a>
      </p>
    </main>
  );
}
