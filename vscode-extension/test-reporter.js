// mocha's spec reporter, plus one closing line "mocha: N passed, N failed" that CI log readers understand.
const Mocha = require('mocha');
class SpecWithSummary extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once('end', () => {
      const s = runner.stats;
      console.log(`mocha: ${s.passes} passed, ${s.failures} failed${s.pending ? `, ${s.pending} skipped` : ''}`);
    });
  }
}
module.exports = SpecWithSummary;
