import Testing
@testable import NAT64

@Suite struct NAT64ModuleTests {
    @Test func moduleBuilds() {
        #expect(Bool(true))
    }
}
