import "./globals.css";

export const metadata = {
  title: "hoist nextjs example",
  description: "A minimal Next.js 15 app built with output: standalone",
};

export default function RootLayout({ children }) {
  return (
    <html lang="en">
      <body>{children}</body>
    </html>
  );
}
