// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

interface IClaimable {
    function claim() external returns (uint256);
}

/// @notice TEST ONLY. A node that tries to claim its reward twice by re-entering claim() from the token hook.
contract ReentrantClaimer {
    IClaimable public immutable distributor;
    bool public armed;
    uint256 public reentries;

    constructor(IClaimable distributor_) {
        distributor = distributor_;
    }

    /// @param reenter Whether the token hook should call claim() again.
    function attack(bool reenter) external returns (uint256) {
        armed = reenter;
        uint256 amount = distributor.claim();
        armed = false;
        return amount;
    }

    function onTokenReceived(address, uint256) external {
        if (armed) {
            armed = false;
            reentries += 1;
            distributor.claim();
        }
    }
}
